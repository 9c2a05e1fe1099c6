//! The vault directory: layout, init, unlock (load), durable writes and compaction.
//!
//! ```text
//! identity.age      the X25519 identity, wrapped by the passphrase (age scrypt)
//! snapshot.age      every retained version at the last compaction, one age file to the
//!                   identity's recipient (header: vault id, generation N)
//! journal.N         writes since that snapshot: one age-encrypted entry per write
//! .lock             held (flock) by the agent that owns the directory
//! ```
//!
//! A write costs one small age encryption, one `pwrite` and one `fdatasync` — never a
//! scrypt and never a rewrite of the vault. Unlock costs one scrypt, one decryption of the
//! snapshot and one per journal entry; the journal is folded into a new snapshot after
//! [`COMPACT_AFTER_ENTRIES`] writes so that last part stays small.
//!
//! Crash safety, step by step. `init` writes the snapshot and the journal first and the
//! identity last, so a vault exists only once it is complete. Compaction writes a new temp
//! file `snapshot.age.tmp.<random>` and an empty `journal.N+1`, syncs both, renames the
//! snapshot over the old one and syncs the directory: before the rename the old snapshot
//! and `journal.N` are intact; after it the new snapshot already holds everything
//! `journal.N` held. An acknowledged write is in the journal (synced) or in a snapshot
//! (synced and renamed). Temp files a crash leaves behind are removed when an agent next
//! takes the directory.
//!
//! Every vault file is opened without following a symlink or blocking, and must be a
//! regular file: anything else (a FIFO, a device, a directory, a link) is `INTEGRITY_ERROR`
//! at once, naming the file.
//!
//! Reads never write: loading leaves every file as it found it, and a vault that fails to
//! decrypt or authenticate is reported, never repaired or overwritten.

use super::journal::{self, Journal, ScanError};
use super::record::{self, JournalEntry, Op, SNAPSHOT_MAGIC, SnapshotHeader, VaultId};
use crate::fsutil;
use crate::locked::LockedBuf;
use crate::storage::codec::{self, MAX_RECORD_LEN};
use crate::storage::crypto::{self, MAX_IDENTITY_FILE};
use crate::storage::index::{Change, SecretStore};
use crate::storage::{BackendError, BackendSettings};
use age::{DecryptError, Decryptor, Encryptor};
use avp_protocol::{Passphrase, Timestamp};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The passphrase-wrapped identity.
pub const IDENTITY_FILE: &str = "identity.age";
/// The compacted state.
pub const SNAPSHOT_FILE: &str = "snapshot.age";
/// Fold the journal into a new snapshot after this many entries…
pub const COMPACT_AFTER_ENTRIES: u64 = 1024;
/// …or this many bytes of journal, whichever comes first.
pub const COMPACT_AFTER_BYTES: u64 = 64 << 20;

/// The journal extending snapshot generation `generation`.
pub fn journal_file(generation: u64) -> String {
    format!("journal.{generation}")
}

/// Whether `dir` holds a vault (its identity file is the last thing `init` writes).
pub fn is_initialized(dir: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(dir.join(IDENTITY_FILE)) {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// An unlocked vault's write side: the recipient to encrypt to and the open journal. The
/// private key is not kept: reads are served from memory.
pub struct DiskVault {
    dir: PathBuf,
    recipient: age::x25519::Recipient,
    vault_id: VaultId,
    generation: u64,
    journal: Journal,
    /// Where each record is encoded before encryption.
    scratch: LockedBuf,
}

impl std::fmt::Debug for DiskVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskVault")
            .field("dir", &self.dir)
            .field("generation", &self.generation)
            .field("journal_entries", &self.journal.entries())
            .finish_non_exhaustive()
    }
}

fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> BackendError {
    move |source| BackendError::io(context, source)
}

impl DiskVault {
    /// Creates a vault in `dir` (which the caller has locked) and returns it open, empty.
    pub fn create(
        dir: &Path,
        passphrase: &Passphrase,
        work_factor: u8,
        settings: BackendSettings,
    ) -> Result<(Self, SecretStore), BackendError> {
        if is_initialized(dir).map_err(io_err("checking for a vault"))? {
            return Err(BackendError::AlreadyInitialized);
        }
        let identity = age::x25519::Identity::generate();
        let wrapped = crypto::wrap_identity(&identity, passphrase, work_factor)?;
        let mut vault_id = [0u8; 16];
        getrandom::fill(&mut vault_id)
            .map_err(|_| BackendError::Encryption("the OS random generator failed"))?;
        let store = SecretStore::new(settings.history, settings.limits);
        let mut vault = Self {
            dir: dir.to_path_buf(),
            recipient: identity.to_public(),
            vault_id,
            generation: 0,
            journal: Journal::create(&dir.join(journal_file(0)))
                .map_err(io_err("creating the journal"))?,
            scratch: LockedBuf::new(4096).map_err(io_err("mapping locked memory"))?,
        };
        vault.compact(&store, Timestamp::now())?;
        fsutil::write_atomic(&dir.join(IDENTITY_FILE), &wrapped)
            .map_err(io_err("writing identity.age"))?;
        Ok((vault, store))
    }

    /// Unlocks the vault in `dir`: one scrypt, then the snapshot and the journal into
    /// locked memory. Writes nothing.
    pub fn open(
        dir: &Path,
        passphrase: &Passphrase,
        settings: BackendSettings,
    ) -> Result<(Self, SecretStore), BackendError> {
        let wrapped = read_identity_file(dir)?;
        let identity = crypto::unwrap_identity(&wrapped, passphrase)?;
        let mut store = SecretStore::new(settings.history, settings.limits);
        let mut scratch = LockedBuf::new(64 << 10).map_err(io_err("mapping locked memory"))?;
        let header = load_snapshot(dir, &identity, &mut store, &mut scratch)?;
        let journal_path = dir.join(journal_file(header.generation));
        let scan = journal::scan(&journal_path).map_err(|err| match err {
            ScanError::Corrupt => BackendError::Integrity(
                "the vault journal is corrupt: restore the vault directory from a backup",
            ),
            ScanError::Io(err) if fsutil::is_not_regular(&err) => BackendError::Integrity(
                "the vault journal (journal.<N> in the vault directory) is not a regular file \
                 (a symlink, FIFO, device or directory): restore the vault directory from a \
                 backup",
            ),
            ScanError::Io(err) if err.kind() == io::ErrorKind::NotFound => BackendError::Integrity(
                "the vault journal is missing: restore the vault directory from a backup",
            ),
            ScanError::Io(err) => BackendError::io("reading the journal", err),
        })?;
        for (seq, body) in scan.entries.iter().enumerate() {
            replay_entry(body, &identity, &header, seq as u64, &mut store)?;
        }
        if scan.torn_tail {
            tracing::warn!("the journal ends in an unacknowledged, torn write; it is ignored");
        }
        let purged = store.purge_expired(Timestamp::now());
        tracing::debug!(
            generation = header.generation,
            journal_entries = scan.entries.len(),
            purged,
            "vault loaded"
        );
        let journal = Journal::open(&journal_path, &scan).map_err(|err| {
            if fsutil::is_not_regular(&err) {
                BackendError::Integrity(
                    "the vault journal was replaced by something other than a regular file \
                     during unlock: restore the vault directory from a backup",
                )
            } else {
                BackendError::io("opening the journal", err)
            }
        })?;
        Ok((
            Self {
                dir: dir.to_path_buf(),
                recipient: identity.to_public(),
                vault_id: header.vault_id,
                generation: header.generation,
                journal,
                scratch,
            },
            store,
        ))
    }

    /// Makes `change` durable (journal append + fdatasync). Nothing is acknowledged on error.
    pub fn persist(&mut self, change: &Change) -> Result<(), BackendError> {
        let entry = JournalEntry {
            vault_id: self.vault_id,
            generation: self.generation,
            seq: self.journal.entries(),
            op: Op::from_change(change),
        };
        codec::encode_into(&entry, &mut self.scratch).map_err(io_err("encoding a record"))?;
        let sealed = crypto::encrypt(&self.recipient, self.scratch.as_slice())?;
        self.journal
            .append(&sealed)
            .map_err(io_err("appending to the vault journal"))
    }

    /// Whether the journal is long enough to fold into a new snapshot.
    pub fn compaction_due(&self) -> bool {
        self.journal.entries() >= COMPACT_AFTER_ENTRIES || self.journal.len() >= COMPACT_AFTER_BYTES
    }

    /// Writes `store` as the next snapshot generation and starts an empty journal for it.
    /// On error the previous snapshot and journal stay in force.
    pub fn compact(&mut self, store: &SecretStore, now: Timestamp) -> Result<(), BackendError> {
        let next = self.generation + 1;
        let snapshot = self.dir.join(SNAPSHOT_FILE);
        let (file, tmp) =
            fsutil::create_temp(&snapshot).map_err(io_err("creating a snapshot.age temp file"))?;
        let written = self.write_snapshot(file, store, next, now);
        if let Err(err) = written {
            let _ = fs::remove_file(&tmp);
            return Err(err);
        }
        let journal_path = self.dir.join(journal_file(next));
        let journal = Journal::create(&journal_path);
        let renamed = journal.and_then(|journal| {
            fsutil::sync_dir(&self.dir)?;
            fs::rename(&tmp, &snapshot)?;
            Ok(journal)
        });
        let journal = match renamed {
            Ok(journal) => journal,
            Err(err) => {
                let _ = fs::remove_file(&tmp);
                return Err(BackendError::io("starting the next snapshot", err));
            }
        };
        fsutil::sync_dir(&self.dir).map_err(io_err("syncing the vault directory"))?;
        self.generation = next;
        self.journal = journal;
        self.remove_stale_journals();
        Ok(())
    }

    /// Removes every journal but the current one: the previous generation's, and any a
    /// crash left between a snapshot's rename and that removal (or a failed compaction's
    /// empty next journal). They are dead: the snapshot already holds what they held.
    fn remove_stale_journals(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let current = journal_file(self.generation);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_journal = name
                .strip_prefix("journal.")
                .is_some_and(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()));
            if is_journal
                && name != current
                && let Err(err) = fs::remove_file(entry.path())
            {
                tracing::warn!(%err, "cannot remove a stale journal");
            }
        }
    }

    fn write_snapshot(
        &mut self,
        file: File,
        store: &SecretStore,
        generation: u64,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        let encryptor = Encryptor::with_recipients(std::iter::once(&self.recipient as _))
            .map_err(|_| BackendError::Encryption("age could not encrypt the snapshot"))?;
        let mut out = encryptor
            .wrap_output(BufWriter::with_capacity(256 << 10, file))
            .map_err(io_err("writing the snapshot.age temp file"))?;
        let header = SnapshotHeader {
            magic: SNAPSHOT_MAGIC,
            vault_id: self.vault_id,
            generation,
            records: count_live_versions(store, now),
        };
        let scratch = &mut self.scratch;
        let mut write_record = |out: &mut dyn Write, record: &dyn erased::Record| {
            record.encode(scratch)?;
            out.write_all(&(scratch.as_slice().len() as u32).to_be_bytes())?;
            out.write_all(scratch.as_slice())
        };
        write_record(&mut out, &header).map_err(io_err("writing the snapshot.age temp file"))?;
        store
            .for_each_version(now, |meta, value| {
                write_record(&mut out, &Op::put(meta, value))
            })
            .map_err(io_err("writing the snapshot.age temp file"))?;
        let buffered = out
            .finish()
            .map_err(io_err("writing the snapshot.age temp file"))?;
        let file = buffered
            .into_inner()
            .map_err(|e| BackendError::io("writing the snapshot.age temp file", e.into_error()))?;
        file.sync_all()
            .map_err(io_err("syncing the snapshot.age temp file"))
    }
}

/// Snapshot records are of two types; this lets one closure encode either.
mod erased {
    use super::LockedBuf;
    pub trait Record {
        fn encode(&self, buf: &mut LockedBuf) -> std::io::Result<()>;
    }
    impl<T: serde::Serialize> Record for T {
        fn encode(&self, buf: &mut LockedBuf) -> std::io::Result<()> {
            crate::storage::codec::encode_into(self, buf)
        }
    }
}

fn count_live_versions(store: &SecretStore, now: Timestamp) -> u64 {
    let mut count = 0u64;
    let _ = store.for_each_version(now, |_, _| {
        count += 1;
        Ok(())
    });
    count
}

fn read_identity_file(dir: &Path) -> Result<Vec<u8>, BackendError> {
    fsutil::read_bounded(&dir.join(IDENTITY_FILE), MAX_IDENTITY_FILE).map_err(|err| {
        match err.kind() {
            _ if fsutil::is_not_regular(&err) => BackendError::Integrity(
                "identity.age is not a regular file (a symlink, FIFO, device or directory): \
                 put the vault's identity.age back from a backup",
            ),
            io::ErrorKind::NotFound => BackendError::NotInitialized,
            io::ErrorKind::InvalidData => {
                BackendError::Integrity("identity.age is too large to be an avp identity")
            }
            _ => BackendError::io("reading identity.age", err),
        }
    })
}

fn corrupt_snapshot() -> BackendError {
    BackendError::Integrity("snapshot.age is corrupt: restore the vault directory from a backup")
}

/// Decrypts the snapshot into `store`; returns its header.
fn load_snapshot(
    dir: &Path,
    identity: &age::x25519::Identity,
    store: &mut SecretStore,
    scratch: &mut LockedBuf,
) -> Result<SnapshotHeader, BackendError> {
    let file =
        fsutil::open_regular(&dir.join(SNAPSHOT_FILE), false).map_err(|err| match err.kind() {
            _ if fsutil::is_not_regular(&err) => BackendError::Integrity(
                "snapshot.age is not a regular file (a symlink, FIFO, device or directory): \
             put the vault's snapshot.age back from a backup",
            ),
            io::ErrorKind::NotFound => BackendError::Integrity(
                "snapshot.age is missing: restore the vault directory from a backup",
            ),
            _ => BackendError::io("opening snapshot.age", err),
        })?;
    // Never read past the size it had when opened.
    let len = file
        .metadata()
        .map_err(io_err("reading snapshot.age"))?
        .len();
    let file = file.take(len);
    let decryptor = Decryptor::new_buffered(BufReader::with_capacity(256 << 10, file))
        .map_err(|err| decrypt_failure(&err))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|err| decrypt_failure(&err))?;
    let header: SnapshotHeader = {
        read_record(&mut reader, scratch)?.ok_or_else(corrupt_snapshot)?;
        codec::decode(scratch.as_slice()).map_err(|_| corrupt_snapshot())?
    };
    if header.magic != SNAPSHOT_MAGIC {
        return Err(corrupt_snapshot());
    }
    for _ in 0..header.records {
        read_record(&mut reader, scratch)?.ok_or_else(corrupt_snapshot)?;
        let op: Op<'_> = codec::decode(scratch.as_slice()).map_err(|_| corrupt_snapshot())?;
        let (meta, value) = record::put_meta(&op).ok_or_else(corrupt_snapshot)?;
        store
            .apply_put(&meta, value)
            .map_err(|_| corrupt_snapshot())?;
    }
    // The stream must end exactly here (and its final MAC must verify).
    let mut probe = [0u8; 1];
    match reader.read(&mut probe) {
        Ok(0) => Ok(header),
        _ => Err(corrupt_snapshot()),
    }
}

/// Reads one `[u32 BE length][record]` into `scratch`; `None` at a clean end of stream.
fn read_record(
    reader: &mut impl Read,
    scratch: &mut LockedBuf,
) -> Result<Option<()>, BackendError> {
    let mut len = [0u8; 4];
    let got = crypto::read_full(reader, &mut len).map_err(|_| corrupt_snapshot())?;
    if got == 0 {
        return Ok(None);
    }
    let len = u32::from_be_bytes(len) as usize;
    if got < 4 || len > MAX_RECORD_LEN {
        return Err(corrupt_snapshot());
    }
    scratch
        .resize(len)
        .map_err(io_err("mapping locked memory"))?;
    if crypto::read_full(reader, scratch.as_mut_slice()).map_err(|_| corrupt_snapshot())? != len {
        return Err(corrupt_snapshot());
    }
    Ok(Some(()))
}

fn decrypt_failure(err: &DecryptError) -> BackendError {
    match err {
        DecryptError::NoMatchingKeys => BackendError::Integrity(
            "snapshot.age belongs to another vault: restore this vault's files from a backup",
        ),
        DecryptError::Io(_) => corrupt_snapshot(),
        _ => corrupt_snapshot(),
    }
}

fn replay_entry(
    body: &[u8],
    identity: &age::x25519::Identity,
    header: &SnapshotHeader,
    seq: u64,
    store: &mut SecretStore,
) -> Result<(), BackendError> {
    let corrupt = || {
        BackendError::Integrity(
            "the vault journal is corrupt: restore the vault directory from a backup",
        )
    };
    let plain = crypto::decrypt(body, identity).map_err(|_| corrupt())?;
    let entry: JournalEntry<'_> = codec::decode(plain.as_slice()).map_err(|_| corrupt())?;
    if entry.vault_id != header.vault_id
        || entry.generation != header.generation
        || entry.seq != seq
    {
        return Err(corrupt());
    }
    match &entry.op {
        Op::Put { .. } => {
            let (meta, value) = record::put_meta(&entry.op).ok_or_else(corrupt)?;
            store.apply_put(&meta, value).map_err(|_| corrupt())
        }
        Op::Delete { workspace, name } => {
            store.apply_delete(workspace, name);
            Ok(())
        }
    }
}

/// Removes the temp files a crash left in the vault directory (an identity or snapshot
/// being replaced). Called when the agent takes the directory's lock, before anything
/// else writes there.
pub fn remove_stale_temps(dir: &Path) {
    fsutil::remove_stale_temps(&dir.join(IDENTITY_FILE));
    fsutil::remove_stale_temps(&dir.join(SNAPSHOT_FILE));
}

/// Checks `passphrase` against the identity in `dir` (one scrypt); nothing else is read.
pub fn verify_passphrase(dir: &Path, passphrase: &Passphrase) -> Result<(), BackendError> {
    let wrapped = read_identity_file(dir)?;
    crypto::unwrap_identity(&wrapped, passphrase).map(drop)
}

/// Re-wraps the identity in `dir` under `new`; the records are untouched. Keeps the work
/// factor the identity was written with.
pub fn change_passphrase(
    dir: &Path,
    old: &Passphrase,
    new: &Passphrase,
) -> Result<(), BackendError> {
    let wrapped = read_identity_file(dir)?;
    let identity = crypto::unwrap_identity(&wrapped, old)?;
    let work_factor =
        crypto::identity_work_factor(&wrapped).unwrap_or(crate::storage::DEFAULT_WORK_FACTOR);
    let rewrapped = crypto::wrap_identity(&identity, new, work_factor)?;
    fsutil::write_atomic(&dir.join(IDENTITY_FILE), &rewrapped)
        .map_err(io_err("writing identity.age"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use avp_protocol::{ExpiryChange, Labels, SecretName, SecretValue, WorkspaceId};

    fn put(store: &SecretStore, name: &str, value: &[u8]) -> Change {
        store
            .plan_store(
                &WorkspaceId::new("w").unwrap(),
                &SecretName::new(name).unwrap(),
                SecretValue::from_slice(value),
                Some(Labels::empty()),
                ExpiryChange::Keep,
                Timestamp::now(),
            )
            .unwrap()
            .0
    }

    fn get(store: &SecretStore, name: &str) -> Vec<u8> {
        store
            .retrieve(
                &WorkspaceId::new("w").unwrap(),
                &SecretName::new(name).unwrap(),
                None,
                Timestamp::now(),
            )
            .unwrap()
            .value
            .expose_secret()
            .to_vec()
    }

    #[test]
    fn writes_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let pass = Passphrase::new("pw");
        let settings = BackendSettings::default();
        let (mut vault, mut store) = DiskVault::create(dir.path(), &pass, 10, settings).unwrap();
        for i in 0..5u8 {
            let change = put(&store, &format!("k{i}"), &[i; 3]);
            vault.persist(&change).unwrap();
            store.apply(&change).unwrap();
        }
        vault.compact(&store, Timestamp::now()).unwrap();
        let change = put(&store, "k0", b"new");
        vault.persist(&change).unwrap();
        store.apply(&change).unwrap();
        drop((vault, store));
        let (_, store) = DiskVault::open(dir.path(), &pass, settings).unwrap();
        assert_eq!(get(&store, "k0"), b"new");
        assert_eq!(get(&store, "k4"), [4u8; 3]);
        let wrong = DiskVault::open(dir.path(), &Passphrase::new("nope"), settings);
        assert!(matches!(wrong, Err(BackendError::AuthenticationFailed(_))));
    }

    #[test]
    fn compaction_removes_stale_journals() {
        let dir = tempfile::tempdir().unwrap();
        let pass = Passphrase::new("pw");
        let settings = BackendSettings::default();
        let (mut vault, store) = DiskVault::create(dir.path(), &pass, 10, settings).unwrap();
        // As if a crash had left these behind.
        fs::write(dir.path().join(journal_file(0)), b"").unwrap();
        fs::write(dir.path().join(journal_file(7)), b"").unwrap();
        fs::write(dir.path().join("journal.notes"), b"keep").unwrap();
        vault.compact(&store, Timestamp::now()).unwrap();
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("journal."))
            .collect();
        names.sort();
        assert_eq!(names, [journal_file(2), "journal.notes".to_owned()]);
        drop(vault);
        DiskVault::open(dir.path(), &pass, settings).unwrap();
    }

    #[test]
    fn a_flipped_journal_byte_fails_unlock_and_leaves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let pass = Passphrase::new("pw");
        let settings = BackendSettings::default();
        let (mut vault, store) = DiskVault::create(dir.path(), &pass, 10, settings).unwrap();
        vault.persist(&put(&store, "k", b"v")).unwrap();
        drop(vault);
        let path = dir.path().join(journal_file(1));
        let mut bytes = fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = DiskVault::open(dir.path(), &pass, settings).unwrap_err();
        assert!(matches!(err, BackendError::Integrity(_)), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
}
