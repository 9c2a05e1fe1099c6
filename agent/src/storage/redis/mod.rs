//! The Redis backend: one vault that several agents — on several machines — share through a
//! Redis server, with nothing readable in Redis.
//!
//! # What is stored
//!
//! Everything the age vault keeps in its directory, as Redis keys (layout in [`keys`]):
//! the passphrase-wrapped identity (the same age scrypt file as the vault's `identity.age`,
//! so `avp init` on one machine and `avp unlock` on another open the same vault), and per
//! secret one metadata record plus one value record per retained version, each an age file
//! encrypted to the vault's X25519 recipient before it leaves the agent ([`record`]).
//!
//! # What Redis — or anyone with its data, its AOF/RDB files or its network traffic — can see
//!
//! - That a vault exists, its scrypt work factor (in the identity's header), and nothing
//!   of the passphrase but what brute force against scrypt yields.
//! - How many workspaces hold secrets, how many secrets each holds, how many versions each
//!   secret retains (the number of fields of its hash), and which secrets are in which
//!   workspace (the metadata hash lists the secrets' tags).
//! - The size of every record: a value's length to within age's fixed overhead, and
//!   roughly the size of each secret's labels.
//! - Timing: when each secret is read or written, by which client address, and how often —
//!   so which tag is "hot", and that a write replaced a version. Two reads of one secret
//!   are linkable, as its tag is stable. The workspace's log of recent writes keeps the
//!   order of its last 1,024 writes (by tag) even for someone who only sees a copy of the
//!   data, not the traffic.
//!
//! # What it cannot see
//!
//! Workspace ids, secret names, label keys and values, values, version numbers, times,
//! expiry: all are inside the age ciphertexts or hidden behind HMAC tags under a key
//! derived from the identity. It cannot alter or move a record without `INTEGRITY_ERROR`
//! (each record names its place and is checked on every read), but it can delete data, or
//! roll a secret back to an older state it kept a copy of — treat Redis's availability and
//! backups as yours to guard, and its confidentiality as age's.
//!
//! # How it behaves
//!
//! Reads and writes go to Redis every time while it is reachable (see [`cache`] for the one
//! cache and why it cannot serve stale data). Writes are optimistic compare-and-set Lua
//! scripts ([`scripts`], [`write`]), atomic on the server and retried on conflict, so
//! concurrent agents neither lose updates nor reuse version numbers. With Redis Sentinel
//! ([`sentinel`]) the agent follows failovers and acknowledges a write only once a replica
//! holds it ([`conn`]). When Redis cannot be reached, writes fail with
//! `BACKEND_UNAVAILABLE`; an unlocked agent keeps answering RETRIEVE, LIST and HISTORY from
//! what it last read or wrote for a bounded time (`last_known`, [`backend`]), and the agent
//! reconnects on the next operation.
//!
//! Modules: [`conn`] (connection pool, failover, errors), [`sentinel`] (finding the
//! primary), `last_known` (reads while Redis is away), [`keys`] (key layout, HMAC tags),
//! [`scripts`] (Lua), [`record`] (encrypted record formats), [`cache`] (decrypted
//! metadata) and [`locked_meta`] (where it lives), [`backend`] (reads), [`write`] (writes).

pub mod backend;
pub mod cache;
pub mod conn;
pub mod keys;
mod last_known;
pub mod locked_meta;
pub mod record;
pub mod scripts;
pub mod sentinel;
mod write;

pub use backend::RedisBackend;
pub use conn::{Redis, RedisOptions};

use super::{Backend, BackendError, BackendSettings, DEFAULT_WORK_FACTOR, KeyStore};
use crate::storage::crypto;
use avp_protocol::Passphrase;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A vault kept in Redis. Holds no secret: only the link to Redis.
#[derive(Debug)]
pub struct RedisKeyStore {
    redis: Arc<Redis>,
    settings: BackendSettings,
    /// Set once a vault was seen: a vault is never un-created, so STATUS and the "locked"
    /// answers need not ask Redis again.
    seen_initialized: AtomicBool,
}

/// The identity errors of `storage::crypto` name `identity.age`; here it lives in Redis.
fn identity_error(err: BackendError) -> BackendError {
    match err {
        BackendError::Integrity(_) => BackendError::Integrity(
            "the vault identity stored in Redis is corrupt or was not written by avp \
             (key avp:1:identity): restore Redis from a backup",
        ),
        other => other,
    }
}

impl RedisKeyStore {
    /// Opens the Redis at `url` (`redis://`, `rediss://`, `unix://`, `redis+sentinel://`)
    /// with the default options. Does not need Redis to be up: the agent starts, and
    /// reports `BACKEND_UNAVAILABLE` until it is.
    pub fn open(url: &str, settings: BackendSettings) -> Result<Self, BackendError> {
        Self::open_with(url, RedisOptions::default(), settings)
    }

    /// [`Self::open`] with explicit high-availability options.
    pub fn open_with(
        url: &str,
        options: RedisOptions,
        settings: BackendSettings,
    ) -> Result<Self, BackendError> {
        let redis = Arc::new(Redis::open_with(url, options)?);
        let store = Self {
            redis,
            settings,
            seen_initialized: AtomicBool::new(false),
        };
        match store.is_initialized() {
            Ok(initialized) => {
                tracing::info!(redis = %store.redis.location(), initialized, "using Redis")
            }
            Err(err) => tracing::warn!(%err, "Redis is not reachable yet; will retry on demand"),
        }
        Ok(store)
    }

    fn wrapped_identity(&self) -> Result<Vec<u8>, BackendError> {
        self.redis
            .run(|conn, _| scripts::identity(conn))?
            .ok_or(BackendError::NotInitialized)
    }

    fn serve(&self, identity: age::x25519::Identity) -> Result<Box<dyn Backend>, BackendError> {
        self.seen_initialized.store(true, Ordering::Relaxed);
        let backend =
            RedisBackend::new(Arc::clone(&self.redis), Box::new(identity), self.settings)?;
        Ok(Box::new(backend))
    }
}

impl KeyStore for RedisKeyStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn location(&self) -> String {
        self.redis.location().to_owned()
    }

    fn is_initialized(&self) -> Result<bool, BackendError> {
        if self.seen_initialized.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let exists = self.redis.run(|conn, _| scripts::has_identity(conn))?;
        if exists {
            self.seen_initialized.store(true, Ordering::Relaxed);
        }
        Ok(exists)
    }

    fn is_reachable(&self) -> bool {
        self.redis.is_reachable()
    }

    fn degraded_since(&self) -> Option<avp_protocol::Timestamp> {
        self.redis.degraded_since()
    }

    fn init(
        &self,
        passphrase: &Passphrase,
        work_factor: u8,
    ) -> Result<Box<dyn Backend>, BackendError> {
        let identity = age::x25519::Identity::generate();
        let wrapped = crypto::wrap_identity(&identity, passphrase, work_factor)?;
        // SET NX: of two agents initialising at once, exactly one creates the vault.
        if !self
            .redis
            .write(|conn, _| scripts::create_identity(conn, &wrapped), |c| *c)?
        {
            self.seen_initialized.store(true, Ordering::Relaxed);
            return Err(BackendError::AlreadyInitialized);
        }
        tracing::info!(redis = %self.redis.location(), work_factor, "vault created in Redis");
        self.serve(identity)
    }

    fn unlock(&self, passphrase: &Passphrase) -> Result<Box<dyn Backend>, BackendError> {
        let wrapped = self.wrapped_identity()?;
        let identity = crypto::unwrap_identity(&wrapped, passphrase).map_err(identity_error)?;
        self.serve(identity)
    }

    fn verify(&self, passphrase: &Passphrase) -> Result<(), BackendError> {
        let wrapped = self.wrapped_identity()?;
        crypto::unwrap_identity(&wrapped, passphrase)
            .map(drop)
            .map_err(identity_error)
    }

    fn change_passphrase(&self, old: &Passphrase, new: &Passphrase) -> Result<(), BackendError> {
        let wrapped = self.wrapped_identity()?;
        let identity = crypto::unwrap_identity(&wrapped, old).map_err(identity_error)?;
        let work_factor = crypto::identity_work_factor(&wrapped).unwrap_or(DEFAULT_WORK_FACTOR);
        let rewrapped = crypto::wrap_identity(&identity, new, work_factor)?;
        // Compare-and-set: a concurrent change from another agent is not overwritten.
        if self.redis.write(
            |conn, _| scripts::rewrap_identity(conn, &wrapped, &rewrapped),
            |c| *c,
        )? {
            Ok(())
        } else {
            Err(BackendError::InvalidRequest(
                "the passphrase was changed meanwhile by another agent: unlock with the new one",
            ))
        }
    }
}
