//! The agent through its socket: lifecycle, daemon and systemd modes, paths, descriptors,
//! hostile input, leaks, every AVP rule, the v1 vault fixture and special vault files.
//!
//! One test binary per area (each file a module) so the suite links a few binaries instead of
//! one per file. Run one file's tests with its module path, e.g. `cargo test -p avp-tests
//! --test agent -- daemon::`.

mod daemon;
mod descriptors;
mod hostile;
mod json;
mod leaks;
mod lifecycle;
mod logind;
mod paths;
mod pinentry;
mod pipelined;
mod semantics;
mod systemd;
mod threads;
mod vault_fixture;
mod vault_special_files;
