//! The README's quick start, run as written on an empty `HOME` and `XDG_RUNTIME_DIR`, each
//! step checked. The lines are read from README.md between `<!-- quickstart -->` markers,
//! so the README cannot drift from what works.
//!
//! Two things differ from a person at a terminal, neither in the commands themselves: the
//! `cargo build --release` step is skipped and `target/release` is the directory of the
//! binaries under test (this test is itself run by cargo); and the script runs on a
//! pseudo-terminal made by `script(1)` so `avp init` can prompt for its passphrase, which
//! the test types.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const PASSPHRASE: &str = "quick start passphrase";

fn readme_quickstart() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let start = readme
        .find("<!-- quickstart -->")
        .expect("quickstart marker");
    let end = readme.find("<!-- /quickstart -->").expect("end marker");
    readme[start..end]
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("```"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_quick_start_works_on_a_fresh_home() {
    let lines = readme_quickstart();
    assert!(
        lines[0].starts_with("cargo build --release && "),
        "{lines:?}"
    );
    let root = tempfile::tempdir().unwrap();
    let (home, runtime, clone) = (
        root.path().join("home"),
        root.path().join("run"),
        root.path().join("clone"),
    );
    for dir in [&home, &runtime, &clone.join("target")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let binaries = avp_tests::agent_bin().parent().unwrap().to_path_buf();
    std::os::unix::fs::symlink(&binaries, clone.join("target/release")).unwrap();

    let mut script = String::from("set -euo pipefail\n");
    script.push_str(lines[0].trim_start_matches("cargo build --release && "));
    script.push('\n');
    for line in &lines[1..] {
        script.push_str(line);
        script.push('\n');
    }
    // Afterwards: what the test checks, then stop the agent the quick start started.
    script.push_str("echo \"CHECK AVP_SOCK=$AVP_SOCK\"\nkill \"$AVP_AGENT_PID\"\n");
    std::fs::write(clone.join("quickstart.sh"), &script).unwrap();

    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", "bash quickstart.sh", "/dev/null"])
        .current_dir(&clone)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    // The two answers to `avp init`'s prompts, typed ahead.
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{PASSPHRASE}\n{PASSPHRASE}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    let transcript = String::from_utf8_lossy(&output.stdout).replace('\r', "");
    assert!(
        output.status.success(),
        "quick start failed:\n{transcript}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Step by step.
    assert!(
        transcript.contains("Agent pid "),
        "the agent started:\n{transcript}"
    );
    let socket = runtime.join("avp/agent.sock");
    assert!(
        transcript.contains(&format!("CHECK AVP_SOCK={}", socket.display())),
        "AVP_SOCK points at the default socket:\n{transcript}"
    );
    let vault = home.join(".local/share/avp");
    assert!(
        vault.join("identity.age").exists(),
        "avp init created the vault in ~/.local/share/avp"
    );
    assert!(
        transcript.contains("sk-live-1234\n"),
        "avp get printed the value:\n{transcript}"
    );
    assert!(
        transcript.contains("API_KEY has 12 characters"),
        "avp run passed it on:\n{transcript}"
    );
    // The audit line is written within 50 ms (and at the latest when the agent stops).
    let audit_log = home.join(".local/state/avp/audit.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let audit = std::fs::read_to_string(&audit_log).unwrap_or_default();
        if audit.contains("\"RETRIEVE\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no RETRIEVE in the audit log:\n{audit}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // `kill $AVP_AGENT_PID` stopped it cleanly: the socket is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while socket.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
