//! `unsafe` in the agent is confined to its OS primitives by the compiler, not by habit.
//!
//! Both crate roots of `avp-agent` (the library and the binary) carry `#![deny(unsafe_code)]`,
//! so an `unsafe` block anywhere else does not compile. This test keeps that true: it fails if
//! a root loses the `deny`, or if any file opens an exception other than the OS-primitive
//! modules listed here (a new one belongs to the OS layer and is added on purpose).

use std::fs;
use std::path::{Path, PathBuf};

/// The modules allowed `unsafe`: process hardening, locked memory, the zeroizing allocator,
/// descriptor adoption.
const OS_PRIMITIVES: &[&str] = &["harden"];

fn agent_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read agent/src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn both_agent_crate_roots_deny_unsafe_code() {
    for root in ["lib.rs", "main.rs"] {
        let text = fs::read_to_string(agent_src().join(root)).expect("an agent crate root");
        assert!(
            text.lines().any(|l| l.trim() == "#![deny(unsafe_code)]"),
            "agent/src/{root} must start with #![deny(unsafe_code)]"
        );
    }
}

#[test]
fn only_the_os_primitives_are_allowed_unsafe_code() {
    let mut files = Vec::new();
    rust_files(&agent_src(), &mut files);
    let mut exceptions = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("an agent source file");
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if !line.contains("allow(unsafe_code)") {
                continue;
            }
            // An allowed exception is an outer attribute on `mod <os primitive>;`.
            let item = lines[n + 1..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.starts_with("#[") && !l.starts_with("//"));
            let module = item
                .and_then(|l| l.trim_start_matches("pub ").strip_prefix("mod "))
                .map(|l| l.trim_end_matches(';').trim_end_matches(" {"));
            if !module.is_some_and(|m| OS_PRIMITIVES.contains(&m)) {
                exceptions.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        exceptions.is_empty(),
        "`unsafe` is allowed only on the OS-primitive modules {OS_PRIMITIVES:?}; move the \
         unsafe code there (or add a new OS module to the list on purpose):\n{}",
        exceptions.join("\n")
    );
}
