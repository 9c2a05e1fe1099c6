//! `avp-agent`: the per-user daemon that holds the age vault unlocked in locked memory and
//! serves AVP over a Unix socket to processes of the same user.
//!
//! Modules, one job each:
//! - [`cli`]: the daemon's flags (README "Running the agent") and the paths they
//!   resolve to (PROTOCOL.md §2.1; README "Files and environment").
//! - [`socket`]: the socket directory rules, binding, stale-socket and second-agent checks.
//! - [`server`]: accept loop, peer-credential check, connection cap, a thread per
//!   connection, graceful drain.
//! - [`connection`]: one connection: read → dispatch → write, every wait bounded.
//! - [`cmd`]: one AVP operation per file; `cmd/mod.rs` only dispatches.
//! - [`state`]: the shared agent state: key store, open backend, sessions, lock timers.
//! - [`session`]: the bounded session table (TTL, workspace and uid binding).
//! - [`sync`]: the FIFO unlock gate and the frame-memory budget the connection threads share.
//! - [`timer`]: idle lock and maximum unlock lifetime on `CLOCK_BOOTTIME`.
//! - [`audit`]: one JSON line per access decision, never a value.
//! - [`harden`]: process hardening and locked memory — the only `unsafe` in the agent.
//! - [`locked`]: the locked arena and scratch buffers plaintext lives in (over `harden`).
//! - [`storage`]: the storage traits, their factory and the backends (load, seal, persist).
//! - [`rules`]: the AVP decisions every backend calls (pure: put, rotate, delete, page).
//! - [`daemon`]: `--daemon` (ssh-agent style) launch and systemd notifications.
//! - [`lifecycle`]: the running agent: server, lock timers, signals, the `-- CMD` child.
//! - [`fsutil`]: private directories, durable atomic writes, lock files.
//! - [`units`]: the systemd user units, installed with `--install-units`.
//! - [`error`]: the agent's one error type and its mapping to wire codes.

// `unsafe` lives only in the OS primitives (`harden`: syscalls nix wraps as unsafe, the
// locked-memory region, the zeroizing allocator, adopting an inherited descriptor); every
// other module is checked by the compiler to have none.
#![deny(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod cmd;
pub mod connection;
pub mod daemon;
pub mod error;
pub mod fsutil;
// The OS primitives: the one module allowed `unsafe`, each block with its SAFETY comment.
#[allow(unsafe_code)]
pub mod harden;
pub mod lifecycle;
pub mod locked;
pub mod rules;
pub mod server;
pub mod session;
pub mod socket;
pub mod state;
pub mod storage;
pub mod sync;
pub mod timer;
pub mod units;
