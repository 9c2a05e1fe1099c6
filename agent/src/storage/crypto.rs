//! Everything a vault does with age, wherever it is stored (the local directory, Redis):
//! the passphrase-wrapped identity file, and encrypting/decrypting records to the vault's
//! X25519 recipient.
//!
//! The identity file is a standard age file (scrypt recipient) whose plaintext is the
//! `AGE-SECRET-KEY-1…` line, so `age -d identity.age` with the passphrase recovers the key
//! without avp. The work factor is explicit at `init` and capped at unlock, so a hostile
//! identity file cannot make the agent spend more than logN 22 (about 4 GiB and a minute).

use crate::locked::LockedBuf;
use crate::storage::{BackendError, MAX_UNLOCK_WORK_FACTOR};
use age::secrecy::{ExposeSecret, SecretString};
use age::{DecryptError, Decryptor, Encryptor};
use avp_protocol::Passphrase;
use std::io::{self, Read, Write};
use std::str::FromStr;

/// The largest identity file read (an age scrypt file of one key is ~300 bytes).
pub const MAX_IDENTITY_FILE: u64 = 64 << 10;

fn secret_string(passphrase: &Passphrase) -> SecretString {
    SecretString::from(passphrase.expose_secret().to_owned())
}

/// Wraps `identity` under `passphrase` at scrypt work factor `log_n`.
pub fn wrap_identity(
    identity: &age::x25519::Identity,
    passphrase: &Passphrase,
    log_n: u8,
) -> Result<Vec<u8>, BackendError> {
    let mut recipient = age::scrypt::Recipient::new(secret_string(passphrase));
    recipient.set_work_factor(log_n);
    let key = identity.to_string();
    encrypt(&recipient, key.expose_secret().as_bytes())
}

/// Unwraps the identity in `file` with `passphrase`.
pub fn unwrap_identity(
    file: &[u8],
    passphrase: &Passphrase,
) -> Result<age::x25519::Identity, BackendError> {
    let mut scrypt = age::scrypt::Identity::new(secret_string(passphrase));
    scrypt.set_max_work_factor(MAX_UNLOCK_WORK_FACTOR);
    let plain = decrypt(file, &scrypt).map_err(|err| match err {
        DecryptError::DecryptionFailed
        | DecryptError::KeyDecryptionFailed
        | DecryptError::NoMatchingKeys => BackendError::AuthenticationFailed(
            "wrong passphrase: try again (each wrong attempt adds a delay)",
        ),
        DecryptError::ExcessiveWork { .. } => BackendError::Integrity(
            "identity.age demands more than scrypt logN 22: it was not written by avp",
        ),
        _ => BackendError::Integrity("identity.age is corrupt: restore it from a backup"),
    })?;
    let text = std::str::from_utf8(plain.as_slice())
        .map_err(|_| BackendError::Integrity("identity.age does not hold an age identity"))?;
    age::x25519::Identity::from_str(text.trim_end())
        .map_err(|_| BackendError::Integrity("identity.age does not hold an age identity"))
}

/// The scrypt work factor an identity file was written with (from its header line
/// `-> scrypt <salt> <logN>`), so a passphrase change keeps it.
pub fn identity_work_factor(file: &[u8]) -> Option<u8> {
    // The header is text up to the `---` MAC line; the payload after it is binary.
    let stanza = file
        .split(|&b| b == b'\n')
        .take_while(|line| !line.starts_with(b"---"))
        .find(|line| line.starts_with(b"-> scrypt "))?;
    std::str::from_utf8(stanza)
        .ok()?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// Encrypts `plain` to `recipient` as one age file.
pub fn encrypt(recipient: &dyn age::Recipient, plain: &[u8]) -> Result<Vec<u8>, BackendError> {
    let fail = |_| BackendError::Encryption("age could not encrypt a record");
    let encryptor = Encryptor::with_recipients(std::iter::once(recipient)).map_err(fail)?;
    // age adds a header of ~200 bytes and 16 bytes per 64 KiB chunk.
    let mut out = Vec::with_capacity(plain.len() + 256 + plain.len() / 4096);
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|_| BackendError::Encryption("age could not encrypt a record"))?;
    writer
        .write_all(plain)
        .and_then(|()| writer.finish().map(|_| ()))
        .map_err(|_| BackendError::Encryption("age could not encrypt a record"))?;
    Ok(out)
}

/// Decrypts one whole age file into a locked buffer.
pub fn decrypt(file: &[u8], identity: &dyn age::Identity) -> Result<LockedBuf, DecryptError> {
    let decryptor = Decryptor::new_buffered(file)?;
    let mut reader = decryptor.decrypt(std::iter::once(identity))?;
    // The plaintext is never longer than the ciphertext.
    let mut buf = LockedBuf::new(file.len())?;
    let filled = read_full(&mut reader, buf.as_mut_slice())?;
    let mut probe = [0u8; 1];
    if reader.read(&mut probe)? != 0 {
        return Err(DecryptError::InvalidHeader);
    }
    buf.resize(filled)?;
    Ok(buf)
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
pub fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_unwraps_only_with_its_passphrase() {
        let identity = age::x25519::Identity::generate();
        let file = wrap_identity(&identity, &Passphrase::new("right"), 10).unwrap();
        assert_eq!(identity_work_factor(&file), Some(10));
        let back = unwrap_identity(&file, &Passphrase::new("right")).unwrap();
        assert_eq!(
            back.to_public().to_string(),
            identity.to_public().to_string()
        );
        let wrong = unwrap_identity(&file, &Passphrase::new("wrong"))
            .err()
            .unwrap();
        assert!(matches!(wrong, BackendError::AuthenticationFailed(_)));
    }

    #[test]
    fn a_hostile_work_factor_is_refused_before_any_work() {
        let identity = age::x25519::Identity::generate();
        let file = wrap_identity(&identity, &Passphrase::new("p"), 10).unwrap();
        let at = file.windows(4).position(|w| w == b" 10\n").unwrap();
        let mut hostile = file.clone();
        hostile[at + 1..at + 3].copy_from_slice(b"30");
        assert_eq!(identity_work_factor(&hostile), Some(30));
        let started = std::time::Instant::now();
        let err = unwrap_identity(&hostile, &Passphrase::new("p"))
            .err()
            .unwrap();
        assert!(matches!(err, BackendError::Integrity(_)), "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn records_round_trip_and_other_keys_fail() {
        let identity = age::x25519::Identity::generate();
        let file = encrypt(&identity.to_public(), b"\x00MARKER\xff").unwrap();
        assert!(!file.windows(6).any(|w| w == b"MARKER"));
        assert_eq!(
            decrypt(&file, &identity).unwrap().as_slice(),
            b"\x00MARKER\xff"
        );
        let other = age::x25519::Identity::generate();
        assert!(matches!(
            decrypt(&file, &other),
            Err(DecryptError::NoMatchingKeys)
        ));
    }
}
