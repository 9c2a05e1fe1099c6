//! The `avp-client` library (sync and async) against the real agent, a fake agent and a
//! squatter: value sources, a vanished agent, and the socket trust checks; and the Python
//! package's pytest suite (`python`).
//!
//! One test binary per area (each file a module) so the suite links a few binaries instead of
//! one per file. Run one file's tests with its module path, e.g. `cargo test -p avp-tests
//! --test client -- async_client::`.

mod async_client;
mod fake_agent;
mod gone;
mod python;
mod sources;
mod sync;
mod trust;
