//! The `avp` command line against a real agent: every command, errors, JSON, `run`,
//! import/export, the terminal prompts, hardening, and the README's quick start.
//!
//! One test binary per area (each file a module) so the suite links a few binaries instead of
//! one per file. Run one file's tests with its module path, e.g. `cargo test -p avp-tests
//! --test cli -- basic::`.

mod audit;
mod basic;
mod clip;
mod completion;
mod confirm;
mod doctor;
mod edges;
mod edit;
mod errors;
mod fast_get;
mod generate;
mod hardening;
mod import_export;
mod import_pass;
mod import_sdk;
mod json;
mod lock_reasons;
mod man_pages;
mod quickstart;
mod restore_copy;
mod run;
mod tty;
mod unlock_prompt;
mod values;
mod workspaces;
