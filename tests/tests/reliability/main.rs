//! The reliability and security suite (run as root in CI; root-only tests skip otherwise):
//! brute force, concurrency, corruption, crashes, disk faults, exhaustion, hostile peers,
//! leaks and other users.
//!
//! One test binary per area (each file a module) so the suite links a few binaries instead of
//! one per file. Run one file's tests with its module path, e.g. `cargo test -p avp-tests
//! --test reliability -- bruteforce::`.

mod bruteforce;
mod concurrency;
mod corruption;
mod crash;
mod disk;
mod exhaustion;
mod hostile;
mod leaks;
mod other_user;
