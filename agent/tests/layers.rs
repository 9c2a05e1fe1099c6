//! The agent's dependency direction (style.md, "Layers"), checked on the source: each layer
//! below may import from the agent only the modules listed for it, so nothing imports
//! upward — a storage backend never sees sessions, and the AVP rules see nothing of the
//! agent at all. A table: add a row per layer as the other layers are pinned.
//!
//! What counts as an import is every `crate::module` path outside comments (a `use`, a
//! qualified call or a `$crate::` macro path); `crate::{a, b}` names both.
//!
//! Also checked: no backend reaches into another, test code is compiled only with the
//! `testing` feature, and the AVP decisions exist once. The tokens that spell a rule (the value
//! limit, an expiry in the past, the expiry test, a page's frame cost) appear only in
//! `rules/`; a backend that decides for itself again fails here.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// One layer: a directory or file under `agent/src`, and the only top-level modules of the
/// agent its code may name.
struct Layer {
    path: &'static str,
    may_import: &'static [&'static str],
}

const LAYERS: &[Layer] = &[
    // The pure AVP decisions: nothing of the agent but themselves.
    Layer {
        path: "rules",
        may_import: &["rules"],
    },
    // Storage: the backends load, seal and persist; they call the rules and sit on the OS
    // primitives and sync helpers. No sessions, state, commands, server or audit.
    Layer {
        path: "storage",
        may_import: &["storage", "rules", "locked", "harden", "fsutil", "sync"],
    },
    // Locked memory is an OS primitive, over `harden`'s mappings.
    Layer {
        path: "locked.rs",
        may_import: &["locked", "harden"],
    },
];

/// Backends beside each other: one never reaches into another (what they share — age,
/// the record codec, the in-memory index — lives in `storage/` itself).
const SIBLINGS: &[(&str, &[&str])] = &[
    ("storage/local", &["storage::redis", "storage::memory"]),
    ("storage/redis", &["storage::local", "storage::memory"]),
    ("storage/memory.rs", &["storage::local", "storage::redis"]),
];

/// Tokens that spell an AVP decision, and so may only appear under `rules/`.
const RULE_TOKENS: &[&str] = &[
    "max_secret_value_length",
    "is_past(",
    "is_some_and(|at| at <= now)",
    "frame_cost(",
];

/// Files exempt from [`RULE_TOKENS`]: the conformance suite states the rules to test them.
const RULE_TOKEN_EXEMPT: &[&str] = &["storage/conformance.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(path)
            .expect("read a source directory")
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The source without comments (line comments, doc comments and block comments); string
/// contents are kept, which is fine: no string here spells `crate::`.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |end| &after[end + 2..]);
        } else if rest.starts_with("//") {
            rest = rest.find('\n').map_or("", |end| &rest[end..]);
        } else {
            let ch = rest.chars().next().expect("not empty");
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// Every top-level agent module the code names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let preceded = code[..at].chars().next_back();
        if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `some_crate::`
        }
        let path = code[at + "crate::".len()..].trim_start();
        if let Some(group) = path.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    found.insert(name.to_owned());
                }
            }
        } else {
            let name = ident(path);
            // `$crate::some_macro!` names an exported macro, not a module.
            let macro_call = path[name.len()..].starts_with('!');
            if !name.is_empty() && !macro_call {
                found.insert(name.to_owned());
            }
        }
    }
    found
}

fn relative(path: &Path) -> String {
    path.strip_prefix(src())
        .expect("under src")
        .display()
        .to_string()
}

#[test]
fn no_layer_imports_upward() {
    let mut violations = Vec::new();
    for layer in LAYERS {
        let mut files = Vec::new();
        rust_files(&src().join(layer.path), &mut files);
        assert!(!files.is_empty(), "layer {} has no source", layer.path);
        for file in files {
            let text = fs::read_to_string(&file).expect("read a source file");
            for module in imports(&code(&text)) {
                if !layer.may_import.contains(&module.as_str()) {
                    violations.push(format!(
                        "{} imports crate::{module} (layer {} may import only {:?})",
                        relative(&file),
                        layer.path,
                        layer.may_import
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layer direction:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_avp_decisions_are_made_only_in_rules() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut violations = Vec::new();
    for file in files {
        let name = relative(&file);
        if name.starts_with("rules/") || RULE_TOKEN_EXEMPT.contains(&name.as_str()) {
            continue;
        }
        let code = code(&fs::read_to_string(&file).expect("read a source file"));
        for token in RULE_TOKENS {
            if code.contains(token) {
                violations.push(format!(
                    "{name} decides `{token}` itself: call crate::rules"
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "AVP rules written outside rules/:\n{}",
        violations.join("\n")
    );
}

#[test]
fn no_backend_reaches_into_another() {
    let mut violations = Vec::new();
    for (path, forbidden) in SIBLINGS {
        let mut files = Vec::new();
        rust_files(&src().join(path), &mut files);
        assert!(!files.is_empty(), "{path} has no source");
        for file in files {
            let code = code(&fs::read_to_string(&file).expect("read a source file"));
            for other in forbidden.iter().filter(|other| code.contains(*other)) {
                violations.push(format!("{} uses {other}", relative(&file)));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "backends reaching into each other (move what they share up into storage/):\n{}",
        violations.join("\n")
    );
}

/// Test code that must not ship in the library: each module is declared only under the
/// `testing` feature (the agent's own tests turn it on through a dev-dependency).
const TEST_ONLY: &[(&str, &str)] = &[("storage/mod.rs", "pub mod conformance;")];

#[test]
fn test_code_is_behind_the_testing_feature() {
    for (parent, declaration) in TEST_ONLY {
        let text = fs::read_to_string(src().join(parent)).expect("read a source file");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let at = lines
            .iter()
            .position(|line| line == declaration)
            .unwrap_or_else(|| panic!("{parent} no longer declares `{declaration}`"));
        assert!(
            at > 0 && lines[at - 1] == "#[cfg(feature = \"testing\")]",
            "{parent}: `{declaration}` must be under #[cfg(feature = \"testing\")]"
        );
    }
}

#[test]
fn the_import_scan_sees_every_form() {
    let code = code(
        "use crate::state::X; // crate::cmd\n/* crate::server */ use crate::{audit, sync::guard};\n\
         let _ = crate::session::f(); $crate::storage::m!(); $crate::exported!(); other_crate::x;",
    );
    let found: Vec<String> = imports(&code).into_iter().collect();
    assert_eq!(found, ["audit", "session", "state", "storage", "sync"]);
}
