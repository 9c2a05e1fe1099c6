//! The local backend (`--backend vault`): the age vault in a directory — what is on disk,
//! what is in memory, and how the two stay equal.
//!
//! Threat model. On disk, everything is age: the X25519 identity is wrapped by the
//! passphrase (scrypt), every record is encrypted to that identity's recipient, and names,
//! labels and values are all inside the ciphertext — the files reveal only sizes and
//! timing. An attacker who copies the directory must brute-force scrypt. An attacker who
//! can *write* the directory can roll it back to an older copy or cut the end off the
//! journal (that looks like a crash), but cannot forge, alter, reorder or splice records
//! between vaults: those fail unlock with `INTEGRITY_ERROR` and the files are left as they
//! are for the user to restore.
//!
//! In memory, plaintext values live only in a [`crate::locked::LockedArena`] (mlock'd,
//! excluded from core dumps, wiped on free and on drop); the private key is dropped right
//! after unlock, since reads are served from memory and writes only need the public
//! recipient. Locking drops the store, which wipes every value.
//!
//! Modules:
//! - [`backend`]: the [`KeyStore`](crate::storage::KeyStore) over a locked directory, and
//!   the [`Persist`](crate::storage::served::Persist) step that serves the in-memory
//!   [`index`](crate::storage::index) (plan → persist → apply).
//! - [`record`]: the plaintext record formats inside the age files.
//! - [`journal`]: the append-only journal file, torn-tail vs corruption.
//! - [`disk`]: the directory layout, unlock, durable writes and compaction.

pub mod backend;
pub mod disk;
pub mod journal;
pub mod record;

pub use backend::LocalKeyStore;
