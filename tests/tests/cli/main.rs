//! The `avp` command line against a real agent: every command, errors, JSON, `run`,
//! import/export, the terminal prompts, hardening, and the README's quick start.
//!
//! One test binary per area (each file a module) so the suite links a few binaries instead of
//! one per file. Run one file's tests with its module path, e.g. `cargo test -p avp-tests
//! --test cli -- basic::`.

mod basic;
mod clip;
mod completion;
mod doctor;
mod errors;
mod hardening;
mod import_export;
mod import_pass;
mod import_sdk;
mod json;
mod man_pages;
mod quickstart;
mod run;
mod tty;
