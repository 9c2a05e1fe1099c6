//! `avp import --from pass`: a real password store (`pass init`, `pass insert`) under a
//! throwaway gpg key, decrypted by the real gpg; paths map to names, the first line is the
//! value (`--whole-entry` keeps all), and a bad entry imports nothing.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, get, get_in, text};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tempfile::TempDir;

/// A GNUPGHOME with a passphrase-less key, and a pass store initialised for it. The gpg-agent
/// it starts is stopped on drop.
struct Store {
    dir: TempDir,
}

impl Store {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Self { dir };
        std::fs::create_dir(store.gnupg()).unwrap();
        std::fs::set_permissions(
            store.gnupg(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        store.run(
            "gpg",
            &[
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                "avp test <avp-test@example.invalid>",
                "default",
                "default",
                "never",
            ],
            b"",
        );
        store.run("pass", &["init", "avp-test@example.invalid"], b"");
        store
    }

    fn gnupg(&self) -> PathBuf {
        self.dir.path().join("gnupg")
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("GNUPGHOME", self.gnupg())
            .env("PASSWORD_STORE_DIR", self.store());
        command
    }

    fn run(&self, program: &str, args: &[&str], stdin: &[u8]) {
        let mut child = self
            .command(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} (apt install gpg pass): {e}"));
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            text(&out.stderr)
        );
    }

    /// `pass insert -m PATH` with `content`.
    fn insert(&self, path: &str, content: &[u8]) {
        self.run("pass", &["insert", "--multiline", path], content);
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self
            .command("gpgconf")
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// `avp [-w WS] import --from pass --store DIR EXTRA…` with the store's gpg.
fn import(agent: &TestAgent, store: &Store, ws: &str, extra: &[&str]) -> std::process::Output {
    avp(agent)
        .env("GNUPGHOME", store.gnupg())
        .args(["--json", "-w", ws, "import", "--from", "pass", "--store"])
        .arg(store.store())
        .args(extra)
        .output()
        .unwrap()
}

fn names(agent: &TestAgent, ws: &str) -> Vec<String> {
    let out = avp(agent)
        .args(["--json", "-w", ws, "ls"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_pass_store_imports_first_lines_under_dotted_names() {
    let agent = TestAgent::start_initialized();
    let store = Store::new();
    store.insert("web/github.com", b"hunter2\nlogin: me\n");
    store.insert("mail/me@example.org", b"s3cret\n");
    store.insert("API_TOKEN", b"tok-123\n");

    let out = import(&agent, &store, "default", &[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["imported"], 3);
    assert_eq!(get(&agent, "web.github.com"), b"hunter2");
    assert_eq!(get(&agent, "mail.me_example.org"), b"s3cret");
    assert_eq!(get(&agent, "API_TOKEN"), b"tok-123");

    let out = import(&agent, &store, "whole", &["--whole-entry"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        get_in(&agent, "whole", "web.github.com"),
        b"hunter2\nlogin: me\n"
    );
}

#[test]
fn workspaces_from_dirs_puts_each_top_directory_in_its_workspace() {
    let agent = TestAgent::start_initialized();
    let store = Store::new();
    store.insert("work/aws/root", b"aws-pw\n");
    store.insert("home/wifi", b"wifi-pw\n");
    store.insert("TOP", b"top-pw\n");
    let out = import(&agent, &store, "default", &["--workspaces-from-dirs"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(get_in(&agent, "work", "aws.root"), b"aws-pw");
    assert_eq!(get_in(&agent, "home", "wifi"), b"wifi-pw");
    assert_eq!(get(&agent, "TOP"), b"top-pw");
    assert_eq!(names(&agent, "default"), ["TOP"]);
}

#[test]
fn one_bad_entry_imports_nothing() {
    let agent = TestAgent::start_initialized();
    let store = Store::new();
    store.insert("good", b"fine\n");
    store.insert("9lives", b"cat\n");
    let out = import(&agent, &store, "default", &[]);
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("INVALID_NAME") && stderr.contains("9lives"),
        "{stderr}"
    );
    assert!(names(&agent, "default").is_empty());

    // An entry gpg cannot decrypt: named, and still nothing imported.
    let store = Store::new();
    store.insert("good", b"fine\n");
    std::fs::write(store.store().join("broken.gpg"), b"not an OpenPGP message").unwrap();
    let out = import(&agent, &store, "default", &[]);
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`broken`") && stderr.contains("nothing was imported"),
        "{stderr}"
    );
    assert!(!stderr.contains("fine"), "a value leaked: {stderr}");
    assert!(names(&agent, "default").is_empty());
}

#[test]
fn flags_of_another_source_are_usage_errors() {
    let agent = TestAgent::start_initialized();
    for args in [
        &["import", "x.env", "--store", "/nowhere"][..],
        &["import", "--from", "pass", "--password-stdin"],
        &["import", "--from", "pass", "file.env"],
    ] {
        let out = avp(&agent).args(args).output().unwrap();
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out.stderr));
    }
    let empty = tempfile::tempdir().unwrap();
    let out = avp(&agent)
        .args(["import", "--from", "pass", "--store"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("no .gpg entries"),
        "{}",
        text(&out.stderr)
    );
}
