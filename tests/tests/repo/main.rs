//! Rules about the repository itself: citations point into documents it holds, `unsafe` stays
//! in the agent's OS primitives, the suite runs for a user who is not root, and the
//! benchmark's command line starts nothing it was not asked to.
//!
//! One test binary per area (each file a module) so the suite links a few binaries instead of
//! one per file. Run one file's tests with its module path, e.g. `cargo test -p avp-tests
//! --test repo -- doc_refs::`.

mod bench_args;
mod doc_refs;
mod no_placeholder_urls;
mod root_skip;
mod unsafe_confined;
