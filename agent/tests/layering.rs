//! The agent's layers, checked: a module may import what sits at its own level or below,
//! never above. The table is the one-line rule of `style.md` ("Layers"):
//!
//! `main/start → lifecycle → logind → server → connection → registry → cmd → state → prompt →
//! lock state, session, audit → error → storage → rules → helpers (fsutil, timer, pinentry,
//! locked, sync, harden)`, with the launch modules (`daemon`, `cli`, `socket`, `units`) under `start` and
//! `lifecycle` only.
//!
//! It reads the sources (every `crate::module` path outside comments) rather than trusting
//! the compiler, which allows cycles between modules of one crate. Modules missing from the
//! table are not checked (storage's and rules' inner layering is checked in `layers.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each module's level: higher sits above. Equal levels may import each other.
const LEVELS: &[(&str, u8)] = &[
    ("start", 100),
    ("lifecycle", 90),
    ("daemon", 80),
    ("units", 80),
    ("man", 80),
    ("cli", 75),
    ("socket", 75),
    // The logind watcher: started by lifecycle, it locks through the state's lock state;
    // below the launch modules, so it cannot reach them.
    ("logind", 72),
    ("server", 70),
    ("connection", 65),
    ("registry", 60),
    ("cmd", 50),
    ("state", 45),
    ("prompt", 42),
    ("lock_state", 40),
    ("session", 40),
    ("audit", 40),
    ("throttle", 40),
    ("error", 35),
    ("storage", 20),
    ("rules", 15),
    ("fsutil", 10),
    ("timer", 10),
    ("pinentry", 10),
    ("locked", 5),
    ("sync", 0),
    ("harden", 0),
];

fn level(module: &str) -> Option<u8> {
    LEVELS.iter().find(|(m, _)| *m == module).map(|&(_, l)| l)
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The files of top-level module `module`: `module.rs` and everything under `module/`.
fn files_of(module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src().join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    }
    let mut dirs = vec![src().join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The source without comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The top-level modules `code` names through `crate::` (`crate::a::b`, `crate::{a, b::c}`).
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        // `$crate::` in macros names the crate as seen from elsewhere: skip.
        if code[..at].ends_with('$') {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        found.insert(ident(&group[i..]).to_owned());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest).to_owned());
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// Every `(module, imported)` pair where `imported` sits above `module`.
fn upward_imports() -> Vec<String> {
    let mut bad = Vec::new();
    for &(module, own) in LEVELS {
        for file in files_of(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            for imported in imports(&code(&text)) {
                if let Some(theirs) = level(&imported)
                    && theirs > own
                {
                    bad.push(format!(
                        "{} imports `{imported}`, which sits above `{module}`",
                        file.strip_prefix(src()).unwrap().display()
                    ));
                }
            }
        }
    }
    bad
}

#[test]
fn nothing_in_the_agent_imports_upward() {
    let bad = upward_imports();
    assert!(
        bad.is_empty(),
        "imports against the layers (agent/tests/layering.rs has the table):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_layering_check_sees_the_imports_it_checks() {
    // Guards against a check that passes because it reads nothing.
    let lifecycle = imports(&code(
        &std::fs::read_to_string(src().join("lifecycle.rs")).unwrap(),
    ));
    assert!(lifecycle.contains("server"), "{lifecycle:?}");
    let grouped = imports("use crate::{daemon, harden::Thing, lifecycle::{a, b}};");
    assert_eq!(
        grouped.into_iter().collect::<Vec<_>>(),
        ["daemon", "harden", "lifecycle"]
    );
    for &(module, _) in LEVELS {
        assert!(!files_of(module).is_empty(), "no source for `{module}`");
    }
}
