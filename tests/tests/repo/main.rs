//! Rules about the repository itself: citations point into documents it holds, `unsafe` stays
//! in the agent's OS primitives, and the suite runs for a user who is not root.
//!
//! One test binary per area (each file a module) so the suite links a few binaries instead of
//! one per file. Run one file's tests with its module path, e.g. `cargo test -p avp-tests
//! --test repo -- doc_refs::`.

mod doc_refs;
mod root_skip;
mod unsafe_confined;
