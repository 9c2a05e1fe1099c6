//! Random values for `set --generate` and `rotate --generate`, straight from the operating system's generator.

use crate::fail::Failure;
use avp_client::SecretValue;
use zeroize::Zeroizing;

/// The alphabet of generated values: A-Z, a-z, 0-9. Safe in every shell, URL and config
/// format, about 5.95 bits of entropy per character.
pub const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The characters a generated value is drawn from (`set --generate --charset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Charset {
    /// A-Z, a-z, 0-9 (about 5.95 bits a character): safe in every shell, URL and config
    Alnum,
    /// Every printable ASCII character but space (94, about 6.55 bits a character)
    Ascii,
    /// 0-9 and a-f (4 bits a character)
    Hex,
    /// 0-9 (about 3.32 bits a character), for PINs
    Digits,
}

impl Charset {
    /// The characters, each once.
    pub fn alphabet(self) -> Vec<u8> {
        match self {
            Self::Alnum => ALPHABET.to_vec(),
            Self::Ascii => (b'!'..=b'~').collect(),
            Self::Hex => b"0123456789abcdef".to_vec(),
            Self::Digits => b"0123456789".to_vec(),
        }
    }

    /// The name `--charset` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Alnum => "alnum",
            Self::Ascii => "ascii",
            Self::Hex => "hex",
            Self::Digits => "digits",
        }
    }
}

/// `length` characters drawn uniformly from [`ALPHABET`].
pub fn alphanumeric(length: usize) -> Result<SecretValue, Failure> {
    from_alphabet(ALPHABET, length)
}

/// `length` characters drawn uniformly from `alphabet` (2–256 distinct bytes): random
/// bytes at or above the largest multiple of its size are rejected, so no character is
/// more likely than another.
pub fn from_alphabet(alphabet: &[u8], length: usize) -> Result<SecretValue, Failure> {
    let size = alphabet.len();
    debug_assert!((2..=256).contains(&size));
    let accept_below = 256 - 256 % size;
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
        for &byte in random.iter().filter(|&&b| usize::from(b) < accept_below) {
            if filled == length {
                break;
            }
            value[filled] = alphabet[usize::from(byte) % size];
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

    #[test]
    fn every_charset_is_drawn_whole_and_only() {
        for charset in [
            Charset::Alnum,
            Charset::Ascii,
            Charset::Hex,
            Charset::Digits,
        ] {
            let alphabet = charset.alphabet();
            let value = from_alphabet(&alphabet, 8192).unwrap();
            assert!(value.expose_secret().iter().all(|b| alphabet.contains(b)));
            for c in &alphabet {
                assert!(
                    value.expose_secret().contains(c),
                    "{} never drawn",
                    *c as char
                );
            }
        }
        assert_eq!(Charset::Ascii.alphabet().len(), 94);
    }
}
