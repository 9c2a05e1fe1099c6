//! Random values for `rotate --generate`, straight from the operating system's generator.

use crate::fail::Failure;
use avp_client::SecretValue;
use zeroize::Zeroizing;

/// The alphabet of generated values: A-Z, a-z, 0-9. Safe in every shell, URL and config
/// format, about 5.95 bits of entropy per character.
pub const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `length` characters drawn uniformly from [`ALPHABET`]: random bytes at or above the
/// largest multiple of 62 are rejected, so no character is more likely than another.
pub fn alphanumeric(length: usize) -> Result<SecretValue, Failure> {
    const ACCEPT_BELOW: u8 = 248; // 4 * 62
    let mut value = Zeroizing::new(vec![0u8; length]);
    let mut random = Zeroizing::new([0u8; 256]);
    let mut filled = 0;
    while filled < length {
        getrandom::fill(&mut *random).map_err(|err| {
            Failure::io(
                "cannot read the operating system's random generator",
                std::io::Error::other(err.to_string()),
            )
        })?;
        for &byte in random.iter().filter(|&&b| b < ACCEPT_BELOW) {
            if filled == length {
                break;
            }
            value[filled] = ALPHABET[usize::from(byte % 62)];
            filled += 1;
        }
    }
    Ok(SecretValue::from_slice(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_length_and_alphabet_asked_for() {
        for length in [1, 32, 1000] {
            let value = alphanumeric(length).unwrap();
            assert_eq!(value.len(), length);
            assert!(value.expose_secret().iter().all(|b| ALPHABET.contains(b)));
        }
    }

    #[test]
    fn values_differ_and_use_the_whole_alphabet() {
        let a = alphanumeric(4096).unwrap();
        let b = alphanumeric(4096).unwrap();
        assert_ne!(a, b);
        for c in ALPHABET {
            assert!(a.expose_secret().contains(c), "{} never drawn", *c as char);
        }
    }
}
