//! The journal: an append-only file of age-encrypted entries, one per acknowledged write.
//!
//! On disk each entry is `[u32 BE length][u32 BE !length][age file]`. The inverted copy of
//! the length tells a torn append (a crash mid-write, which leaves a short file) from
//! corruption (a flipped byte, which leaves a header that does not check out):
//! - the file ends inside a header or a body, or in zero bytes only → the last append was
//!   torn. It was never acknowledged, so it is ignored, and the next append cuts it off;
//! - anything else that does not parse → the vault is corrupt (`INTEGRITY_ERROR`) and the
//!   file is left exactly as it is.
//!
//! An append is one `pwrite` at the end of the valid prefix followed by `fdatasync`; it is
//! acknowledged only after both succeed.
//!
//! Opening a journal for an unlock needs no write access: on a read-only vault (a read-only
//! mount, an immutable directory, a backup copy) the vault unlocks and serves reads, and
//! only writes fail — until the file can be opened for writing again, which every append
//! retries.

use crate::fsutil;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Bytes of an entry header.
pub const HEADER_LEN: usize = 8;
/// Largest entry body accepted when reading.
pub const MAX_ENTRY_LEN: usize = 4 << 20;

/// What reading a journal found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Entry bodies (age files), in order.
    pub entries: Vec<Vec<u8>>,
    /// Length of the valid prefix: where the next append goes.
    pub valid_len: u64,
    /// True when bytes after `valid_len` were a torn append.
    pub torn_tail: bool,
}

/// The journal is corrupt (not merely torn at its end).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A header or body that cannot be the result of a crash.
    #[error("the journal is corrupt")]
    Corrupt,
    /// Reading failed.
    #[error("cannot read the journal: {0}")]
    Io(#[from] io::Error),
}

/// Encodes an entry header.
fn header(len: u32) -> [u8; HEADER_LEN] {
    let mut bytes = [0u8; HEADER_LEN];
    bytes[..4].copy_from_slice(&len.to_be_bytes());
    bytes[4..].copy_from_slice(&(!len).to_be_bytes());
    bytes
}

/// The largest journal read at unlock. Compaction keeps journals near 64 MiB at most
/// (`disk::COMPACT_AFTER_BYTES`); a larger file was not left by avp.
pub const MAX_JOURNAL_LEN: u64 = 1 << 30;

/// Reads every entry of the journal at `path`, which must be a regular file
/// ([`fsutil::open_regular`]) of at most [`MAX_JOURNAL_LEN`] bytes. Never writes.
pub fn scan(path: &Path) -> Result<Scan, ScanError> {
    let bytes = fsutil::read_bounded(path, MAX_JOURNAL_LEN).map_err(|err| {
        if err.kind() == io::ErrorKind::InvalidData && !fsutil::is_not_regular(&err) {
            ScanError::Corrupt
        } else {
            ScanError::Io(err)
        }
    })?;
    scan_bytes(&bytes)
}

fn scan_bytes(bytes: &[u8]) -> Result<Scan, ScanError> {
    let mut scan = Scan::default();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.iter().all(|&b| b == 0) {
            // A file extended by a crash before its data reached the disk.
            scan.torn_tail = true;
            break;
        }
        let Some(head) = rest.first_chunk::<HEADER_LEN>() else {
            scan.torn_tail = true;
            break;
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let check = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if check != !len || len as usize > MAX_ENTRY_LEN || len == 0 {
            return Err(ScanError::Corrupt);
        }
        let end = HEADER_LEN + len as usize;
        if rest.len() < end {
            scan.torn_tail = true;
            break;
        }
        scan.entries.push(rest[HEADER_LEN..end].to_vec());
        pos += end;
    }
    scan.valid_len = pos as u64;
    Ok(scan)
}

fn open_for_append(path: &Path) -> io::Result<File> {
    fsutil::open_regular(path, true)
}

/// Write access refused: a read-only mount, an immutable file, missing permission.
fn is_read_only(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(nix::libc::EROFS | nix::libc::EACCES | nix::libc::EPERM)
    )
}

/// The open journal of an unlocked vault.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// Open for writing; `None` while the file could not be opened for writing.
    file: Option<File>,
    /// Where the next entry goes; everything before it is whole entries.
    valid_len: u64,
    /// Entries in the file.
    entries: u64,
    /// Set when bytes past `valid_len` may exist (a torn or failed append).
    dirty_tail: bool,
}

impl Journal {
    /// Creates an empty journal at `path` and syncs it. The caller syncs the directory.
    ///
    /// Whatever is at `path` (a stale journal of a failed compaction, or anything planted
    /// there) is unlinked, never opened: the journal is a new file (`O_CREAT | O_EXCL |
    /// O_NOFOLLOW`), so no file the agent did not create is ever truncated.
    pub fn create(path: &Path) -> io::Result<Self> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .mode(0o600)
            .open(path)?;
        file.sync_all()?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
            valid_len: 0,
            entries: 0,
            dirty_tail: false,
        })
    }

    /// Opens a scanned journal for appending. Nothing is written until the first append. A
    /// journal that cannot be opened for writing (read-only) is opened anyway: appends fail
    /// until it can.
    pub fn open(path: &Path, scan: &Scan) -> io::Result<Self> {
        let file = match open_for_append(path) {
            Ok(file) => Some(file),
            Err(err) if is_read_only(&err) => {
                tracing::warn!(%err, "the vault is read-only: reads are served, writes will fail");
                None
            }
            Err(err) => return Err(err),
        };
        Ok(Self {
            path: path.to_path_buf(),
            file,
            valid_len: scan.valid_len,
            entries: scan.entries.len() as u64,
            dirty_tail: scan.torn_tail,
        })
    }

    /// Appends one entry durably. On error nothing is acknowledged and the next append
    /// first cuts off whatever part of this one reached the file.
    pub fn append(&mut self, body: &[u8]) -> io::Result<()> {
        let len = u32::try_from(body.len())
            .ok()
            .filter(|&len| len as usize <= MAX_ENTRY_LEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "entry too large"))?;
        let file = match self.file.take() {
            Some(file) => file,
            None => open_for_append(&self.path)?,
        };
        let file = self.file.insert(file);
        if self.dirty_tail {
            file.set_len(self.valid_len)?;
            self.dirty_tail = false;
        }
        let result = Self::write_entry(file, self.valid_len, len, body);
        match result {
            Ok(written) => {
                self.valid_len += written;
                self.entries += 1;
                Ok(())
            }
            Err(err) => {
                self.dirty_tail = true;
                // Best effort now; retried before the next append.
                if file.set_len(self.valid_len).is_ok() {
                    self.dirty_tail = false;
                }
                Err(err)
            }
        }
    }

    /// Writes one entry at `at` and syncs it; returns its length on disk.
    fn write_entry(file: &File, at: u64, len: u32, body: &[u8]) -> io::Result<u64> {
        let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
        frame.extend_from_slice(&header(len));
        frame.extend_from_slice(body);
        file.write_all_at(&frame, at)?;
        file.sync_data()?;
        Ok(frame.len() as u64)
    }

    /// Entries in the journal.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Bytes of whole entries.
    pub fn len(&self) -> u64 {
        self.valid_len
    }

    /// True when the journal holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: &[u8]) -> Vec<u8> {
        let mut bytes = header(body.len() as u32).to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn whole_entries_are_read_back() {
        let mut bytes = entry(b"one");
        bytes.extend(entry(b"two"));
        let scan = scan_bytes(&bytes).unwrap();
        assert_eq!(scan.entries, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(scan.valid_len, bytes.len() as u64);
        assert!(!scan.torn_tail);
    }

    #[test]
    fn every_cut_of_the_last_entry_is_a_torn_tail() {
        let first = entry(b"first");
        let second = entry(b"second entry");
        for cut in 1..second.len() {
            let mut bytes = first.clone();
            bytes.extend_from_slice(&second[..cut]);
            let scan = scan_bytes(&bytes).unwrap();
            assert_eq!(scan.entries.len(), 1, "cut {cut}");
            assert_eq!(scan.valid_len, first.len() as u64);
            assert!(scan.torn_tail);
        }
        let mut zeros = first.clone();
        zeros.extend_from_slice(&[0u8; 100]);
        assert!(scan_bytes(&zeros).unwrap().torn_tail);
    }

    #[test]
    fn a_flipped_header_byte_is_corruption() {
        let mut bytes = entry(b"first");
        bytes.extend(entry(b"second"));
        for i in 0..HEADER_LEN {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x10;
            assert!(
                matches!(scan_bytes(&flipped), Err(ScanError::Corrupt)),
                "byte {i}"
            );
        }
    }

    #[test]
    fn appends_after_a_torn_tail_cut_it_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let mut journal = Journal::create(&path).unwrap();
        journal.append(b"one").unwrap();
        drop(journal);
        // Simulate a torn append.
        let mut torn = std::fs::read(&path).unwrap();
        torn.extend_from_slice(&entry(b"never acknowledged")[..10]);
        std::fs::write(&path, &torn).unwrap();
        let found = scan(&path).unwrap();
        assert!(found.torn_tail);
        let mut journal = Journal::open(&path, &found).unwrap();
        journal.append(b"two").unwrap();
        let again = scan(&path).unwrap();
        assert_eq!(again.entries, vec![b"one".to_vec(), b"two".to_vec()]);
        assert!(!again.torn_tail);
        assert_eq!(journal.entries(), 2);
    }
}
