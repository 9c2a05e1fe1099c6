//! `avp-agent`: the per-user daemon that holds the age vault unlocked in locked memory and
//! serves AVP over a Unix socket to processes of the same user.
//!
//! Modules, one job each:
//! - [`cli`]: the daemon's flags (README "Running the agent") and the paths they
//!   resolve to (PROTOCOL.md §2.1; README "Files and environment").
//! - [`socket`]: the socket directory rules, binding, stale-socket and second-agent checks.
//! - [`server`]: accepting (the thread woken for a client serves it), peer-credential check,
//!   connection cap, a thread per connection, graceful drain.
//! - [`registry`]: the live connections: the cap, eviction, reaching a blocked read.
//! - [`connection`]: one connection: read → dispatch → write, every wait bounded.
//! - [`cmd`]: the dispatcher and the AVP operations, grouped by what they act on.
//! - [`state`]: what every connection shares: the lock state, the frame budget, the audit
//!   log, the tunables.
//! - [`lock_state`]: the one owner of locked/unlocked: init, unlock, change passphrase,
//!   lock, the single-flight gate, the throttle, the sessions' end and the lock timers.
//! - [`throttle`]: the wrong-passphrase backoff.
//! - [`prompt`]: unlocking through the pinentry for callers that wait, one dialog at a time.
//! - [`pinentry`]: running a pinentry program and speaking Assuan to it, every wait bounded.
//! - [`session`]: the bounded session table (TTL, workspace and uid binding).
//! - [`sync`]: the FIFO unlock gate and the frame-memory budget the connection threads share.
//! - [`timer`]: idle lock and maximum unlock lifetime on `CLOCK_BOOTTIME`.
//! - [`audit`]: one JSON line per access decision, never a value.
//! - [`harden`]: process hardening and locked memory — the only `unsafe` in the agent.
//! - [`locked`]: the locked arena and scratch buffers plaintext lives in (over `harden`).
//! - [`storage`]: the storage traits, their factory and the backends (load, seal, persist).
//! - [`rules`]: the AVP decisions every backend calls (pure: put, rotate, delete, page).
//! - [`daemon`]: `--daemon` (ssh-agent style) launch and systemd notifications.
//! - [`start`]: what the `avp-agent` binary does, from arguments to exit code.
//! - [`lifecycle`]: the running agent: server, lock-timer thread, signal thread, the
//!   `-- CMD` child.
//! - [`logind`]: follows logind on the system D-Bus: locks on sleep and on screen lock.
//! - [`fsutil`]: private directories, durable atomic writes, lock files.
//! - [`units`]: the systemd user units, installed with `--install-units`.
//! - [`man`]: the man page `avp-agent.1`, written with `--install-man`.
//! - [`error`]: the agent's one error type and its mapping to wire codes.
//!
//! # Concurrency
//!
//! The agent uses one model: blocking threads and std synchronisation, no async runtime.
//! A connection is a thread in a blocking `read` (measured faster than an event loop for
//! AVP's microsecond requests: see `connection`), and the same threads wait for new clients
//! (`server`: whoever the kernel wakes serves); the lock timers, the signals (`sigwait` on a
//! mask every thread inherits) and the `-- CMD` child (`waitpid`) each have a thread of
//! their own; the Redis backend uses redis-rs's blocking client, as
//! backend calls already run on those threads. The logind watcher (`logind`) is a thread
//! blocked on zbus's blocking message iterator; zbus drives the D-Bus socket on an executor
//! thread of its own, inside the crate, which the agent never sees. Waits are on condvars,
//! channels, `poll`/`epoll` and `sigwait`, never a sleep-and-check loop (the one timed look
//! is the audit flusher's, for five seconds after a batch, so that requests need not wake
//! it: see `audit`): shutdown is a message on a channel (see
//! `lifecycle`), the drain waits for the last connection to leave (`registry`), an unlock
//! waits for the previous backend's drop (`lock_state`). A runtime would only have added a
//! second model for the four background waits.
//!
//! # Layers
//!
//! `main/start → lifecycle → logind → server → connection → registry → cmd → state → prompt →
//! lock_state, session, audit → error → storage → rules → avp-protocol`, with `fsutil`,
//! `timer`, `pinentry`, `sync`, `locked` and `harden` underneath; the launch modules (`daemon`,
//! `cli`, `socket`, `units`, `man`) are used by `start` and `lifecycle` only.
//! Nothing imports upward: `agent/tests/layering.rs` checks it.

// `unsafe` lives only in the OS primitives (`harden`: syscalls nix wraps as unsafe, the
// locked-memory region, the zeroizing allocator, adopting an inherited descriptor); every
// other module is checked by the compiler to have none.
#![deny(unsafe_code)]

// Public: the modules the binary, the fuzz harness (`fuzz/`), the end-to-end tests
// (`tests/`), the benchmark setup and the conformance tests (`agent/tests/`) reach.
// Everything else is private to the agent.
pub mod audit;
mod cli;
pub mod cmd;
pub mod connection;
mod daemon;
mod error;
pub mod fsutil;
// The OS primitives: the one module allowed `unsafe`, each block with its SAFETY comment.
// Public because the binary installs its `ZeroizingAllocator`.
#[allow(unsafe_code)]
pub mod harden;
mod lifecycle;
mod lock_state;
mod locked;
mod logind;
mod man;
mod pinentry;
mod prompt;
mod registry;
mod rules;
mod server;
mod session;
mod socket;
mod start;
pub mod state;
pub mod storage;
mod sync;
mod throttle;
mod timer;
mod units;

pub use start::main;
