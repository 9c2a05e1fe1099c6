//! The key layout in Redis. Every name a person chose (workspace, secret) appears only as a
//! tag: HMAC-SHA-256 of it, truncated to 128 bits, under a key derived from the vault
//! identity. Two agents that unlocked the same vault derive the same tags; Redis, and anyone
//! reading its data without the passphrase, cannot tell which names exist, nor test a guess.
//!
//! ```text
//! avp:1:identity              string  the passphrase-wrapped identity (age, scrypt)
//! avp:1:workspaces            set     W of every workspace holding secrets (for STATUS)
//! avp:1:w:<W>:gen             string  counter bumped by every write in the workspace
//! avp:1:w:<W>:log             list    the last 1,024 writes: "<generation>:<S>:<version tag>"
//! avp:1:w:<W>:meta            hash    S → metadata record (age) of each secret
//! avp:1:s:<S>                 hash    "c" → tag of the current version,
//!                                     <version tag> → value record (age), per retained version
//! ```
//!
//! `W` = tag("workspace", id), `S` = tag("secret", workspace, name); the parts are
//! length-prefixed, so no two inputs give the same MAC input. Version tags are random (not
//! derived from the version number): a secret deleted and created again never reuses one,
//! which is what makes the compare-and-set on `c` free of ABA.

use crate::locked::LockedBuf;
use crate::storage::BackendError;
use age::secrecy::ExposeSecret;
use avp_protocol::{SecretName, WorkspaceId};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::OnceLock;

/// Every key starts with this: the format version, so a future layout can live beside it.
pub const PREFIX: &str = "avp:1:";
/// The passphrase-wrapped identity.
pub const IDENTITY: &str = "avp:1:identity";
/// The set of workspace tags.
pub const WORKSPACES: &str = "avp:1:workspaces";

/// Bytes kept of each MAC: 128 bits, so a collision needs ~2^64 names.
const TAG_BYTES: usize = 16;
/// HKDF salt: binds the derived key to this use and layout version.
const HKDF_SALT: &[u8] = b"avp redis backend v1";

/// The derived key that turns names into tags, in locked memory (never swapped, left out of
/// core dumps); wiped on drop (when the vault locks). Each tag builds its HMAC state from
/// it afresh (cheap next to the Redis round trip the tag is for).
pub struct KeyNames {
    key: LockedBuf,
}

impl std::fmt::Debug for KeyNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyNames([REDACTED])")
    }
}

/// The keys of one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceKeys {
    /// `W`, as stored in [`WORKSPACES`].
    pub tag: String,
    /// The generation counter.
    pub generation: String,
    /// The log of recent writes (which secret each generation changed).
    pub log: String,
    /// The hash of metadata records.
    pub meta: String,
}

/// The keys of one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeys {
    /// `S`: the secret's field in its workspace's meta hash.
    pub field: String,
    /// The secret's own hash (current-version pointer and value records).
    pub key: String,
}

impl KeyNames {
    /// Derives the naming key from the identity: HKDF-SHA-256 over its secret key string.
    pub fn derive(identity: &age::x25519::Identity) -> Result<Self, BackendError> {
        let secret = identity.to_string();
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret.expose_secret().as_bytes());
        let mut key = LockedBuf::new(32)
            .map_err(|_| BackendError::Encryption("cannot keep the key-naming key in memory"))?;
        hkdf.expand(b"key names", key.as_mut_slice())
            .map_err(|_| BackendError::Encryption("cannot derive the key-naming key"))?;
        Ok(Self { key })
    }

    fn tag(&self, parts: &[&[u8]]) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.key.as_slice()) else {
            unreachable!("HMAC-SHA-256 takes a 32-byte key")
        };
        for part in parts {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        let digest = mac.finalize().into_bytes();
        hex(&digest[..TAG_BYTES])
    }

    /// The keys of `workspace`.
    pub fn workspace(&self, workspace: &WorkspaceId) -> WorkspaceKeys {
        workspace_keys(self.tag(&[b"workspace", workspace.as_str().as_bytes()]))
    }

    /// The keys of secret `name` in `workspace`.
    pub fn secret(&self, workspace: &WorkspaceId, name: &SecretName) -> SecretKeys {
        let field = self.tag(&[
            b"secret",
            workspace.as_str().as_bytes(),
            name.as_str().as_bytes(),
        ]);
        SecretKeys {
            key: format!("{PREFIX}s:{field}"),
            field,
        }
    }
}

impl KeyNames {
    /// Whether a metadata record naming `workspace` and `name` belongs at field `field` of
    /// the workspace tagged `tag`. `known` remembers a workspace id already found to have
    /// that tag, so checking a whole snapshot costs one workspace MAC, not one per record.
    pub fn is_home(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        tag: &str,
        field: &str,
        known: &OnceLock<WorkspaceId>,
    ) -> bool {
        let workspace_ok = match known.get() {
            Some(id) => id == workspace,
            None => {
                let ok = self.workspace(workspace).tag == tag;
                if ok {
                    let _ = known.set(workspace.clone());
                }
                ok
            }
        };
        workspace_ok && self.secret(workspace, name).field == field
    }
}

/// The keys of the workspace whose tag is `tag` (as read back from [`WORKSPACES`]); `None`
/// for anything that is not a tag we could have written.
pub fn workspace_from_tag(tag: &str) -> Option<WorkspaceKeys> {
    is_tag(tag).then(|| workspace_keys(tag.to_owned()))
}

fn workspace_keys(tag: String) -> WorkspaceKeys {
    WorkspaceKeys {
        generation: format!("{PREFIX}w:{tag}:gen"),
        log: format!("{PREFIX}w:{tag}:log"),
        meta: format!("{PREFIX}w:{tag}:meta"),
        tag,
    }
}

/// A fresh random version tag.
pub fn random_tag() -> Result<String, BackendError> {
    let mut bytes = [0u8; TAG_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|_| BackendError::Encryption("the OS random generator failed"))?;
    Ok(hex(&bytes))
}

/// True for the shape of a tag: 32 lower-case hex digits.
pub fn is_tag(text: &str) -> bool {
    text.len() == 2 * TAG_BYTES && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(id: &str) -> WorkspaceId {
        WorkspaceId::new(id).unwrap()
    }

    fn name(n: &str) -> SecretName {
        SecretName::new(n).unwrap()
    }

    #[test]
    fn tags_are_stable_per_identity_and_differ_between_vaults() {
        let identity = age::x25519::Identity::generate();
        let a = KeyNames::derive(&identity).unwrap();
        let again = KeyNames::derive(&identity).unwrap();
        let other = KeyNames::derive(&age::x25519::Identity::generate()).unwrap();
        assert_eq!(a.workspace(&ws("w")), again.workspace(&ws("w")));
        assert_eq!(
            a.secret(&ws("w"), &name("k")),
            again.secret(&ws("w"), &name("k"))
        );
        assert_ne!(a.workspace(&ws("w")), other.workspace(&ws("w")));
        assert_ne!(
            a.secret(&ws("w"), &name("k")),
            other.secret(&ws("w"), &name("k"))
        );
    }

    #[test]
    fn keys_reveal_no_names_and_do_not_collide() {
        let names = KeyNames::derive(&age::x25519::Identity::generate()).unwrap();
        let w = names.workspace(&ws("team-MARKER"));
        let s = names.secret(&ws("team-MARKER"), &name("API_MARKER"));
        for key in [&w.tag, &w.generation, &w.log, &w.meta, &s.field, &s.key] {
            assert!(!key.contains("MARKER"), "{key}");
            assert!(key.starts_with(PREFIX) || is_tag(key), "{key}");
        }
        // Length prefixes keep ("ab","c") and ("a","bc") apart, and workspaces apart.
        assert_ne!(
            names.secret(&ws("ab"), &name("c")),
            names.secret(&ws("a"), &name("bc"))
        );
        assert_ne!(
            names.secret(&ws("team"), &name("k")),
            names.secret(&ws("team/job"), &name("k"))
        );
        assert_eq!(workspace_from_tag(&w.tag), Some(w));
        assert_eq!(workspace_from_tag("not-a-tag"), None);
    }

    #[test]
    fn random_tags_are_tags_and_unique() {
        let a = random_tag().unwrap();
        let b = random_tag().unwrap();
        assert!(is_tag(&a) && is_tag(&b));
        assert_ne!(a, b);
    }
}
