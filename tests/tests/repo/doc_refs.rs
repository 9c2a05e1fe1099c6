//! The code cites only documents that are in the repository, and only sections they have.
//!
//! Comments once cited an outside "contract §N" nobody could read. They now cite
//! `protocol/PROTOCOL.md §N.M` or a README section by its heading (`README "Running the
//! agent"`); this test fails when a citation of the old document comes back, or when a cited
//! section number or heading does not exist (e.g. after a section is renamed).

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root: this package lives in `<root>/tests`.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package has a parent directory")
        .to_path_buf()
}

/// Every text file of the repository that may cite a document, with its contents.
fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in fs::read_dir(dir).expect("read a repository directory") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            // Build output and git's own files are not ours to check.
            if name != "target" && !name.starts_with('.') {
                sources(&path, out);
            }
        } else if [".rs", ".toml", ".md", ".socket", ".service"]
            .iter()
            .any(|ext| name.ends_with(ext))
            && let Ok(text) = fs::read_to_string(&path)
        {
            out.push((path, text));
        }
    }
}

/// The `§N` / `§N.M` section numbers PROTOCOL.md defines, as headings or bold list items.
fn protocol_sections(protocol: &str) -> Vec<String> {
    protocol
        .lines()
        .filter_map(|line| {
            let line = line
                .trim_start_matches(['#', ' ', '-'])
                .trim_start_matches("**");
            let rest = line.strip_prefix('§')?;
            let number: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            Some(format!("§{}", number.trim_end_matches('.')))
        })
        .collect()
}

/// The `§N` / `§N.M` tokens of one line.
fn cited_sections(line: &str) -> Vec<String> {
    line.split('§')
        .skip(1)
        .map(|rest| {
            let number: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            format!("§{}", number.trim_end_matches('.'))
        })
        .collect()
}

/// The headings cited as `README "Heading"` on one line.
fn cited_readme_headings(line: &str) -> Vec<String> {
    line.split("README \"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(heading, _)| heading.to_string()))
        .collect()
}

#[test]
fn no_citation_of_the_outside_contract() {
    let mut files = Vec::new();
    sources(&root(), &mut files);
    let stale: Vec<String> = files
        .iter()
        .flat_map(|(path, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| line.contains("contract §") || line.contains("contract's"))
                .map(move |(n, line)| format!("{}:{}: {}", path.display(), n + 1, line.trim()))
        })
        // This file names the old form in order to look for it.
        .filter(|hit| !hit.contains("doc_refs.rs"))
        .collect();
    assert!(
        stale.is_empty(),
        "cite protocol/PROTOCOL.md §N or a README section instead of the outside contract:\n{}",
        stale.join("\n")
    );
}

#[test]
fn cited_sections_exist() {
    let root = root();
    let protocol = fs::read_to_string(root.join("protocol/PROTOCOL.md")).expect("PROTOCOL.md");
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    let sections = protocol_sections(&protocol);
    let headings: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect();
    assert!(
        sections.iter().any(|s| s == "§9.8"),
        "PROTOCOL.md sections parsed"
    );

    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut broken = Vec::new();
    // PROTOCOL.md cites itself by bare numbers; this file shows the forms it looks for.
    let skip = |p: &Path| p.ends_with("protocol/PROTOCOL.md") || p.ends_with("doc_refs.rs");
    for (path, text) in files.iter().filter(|(p, _)| !skip(p)) {
        for (n, line) in text.lines().enumerate() {
            let at = || format!("{}:{}", path.display(), n + 1);
            if line.contains("PROTOCOL.md §") {
                for cited in cited_sections(line) {
                    if !sections.contains(&cited) {
                        broken.push(format!("{}: PROTOCOL.md has no {cited}", at()));
                    }
                }
            }
            for cited in cited_readme_headings(line) {
                if !headings.contains(&cited.as_str()) {
                    broken.push(format!("{}: README.md has no heading \"{cited}\"", at()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "dangling citations:\n{}",
        broken.join("\n")
    );
}
