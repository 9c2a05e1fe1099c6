//! The units and the manifest point people at real places: the units' `Documentation=` at
//! the manual pages (`man:`), and no file at the `example.invalid` placeholder the first
//! release shipped (the workspace has no public repository, so it names none).

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package has a parent directory")
        .to_path_buf()
}

#[test]
fn units_document_themselves_with_man_pages() {
    for unit in ["avp-agent.service", "avp-agent.socket"] {
        let text = fs::read_to_string(root().join("systemd").join(unit)).unwrap();
        let uris: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("Documentation="))
            .flat_map(str::split_whitespace)
            .collect();
        assert_eq!(uris, ["man:avp-agent(1)", "man:avp(1)"], "{unit}");
    }
}

#[test]
fn no_placeholder_urls() {
    for file in [
        "Cargo.toml",
        "systemd/avp-agent.service",
        "systemd/avp-agent.socket",
    ] {
        let text = fs::read_to_string(root().join(file)).unwrap();
        assert!(!text.contains("example.invalid"), "{file}");
    }
}
