//! `avp doctor` through the real binaries: a healthy setup passes every check; each broken
//! setup (no agent, a vault or runtime directory others can enter, units installed but not
//! enabled, an audit log that cannot be written) fails or warns on its own line with the fix.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, avp_at, code, text};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use tempfile::TempDir;

/// A home for the checks: a private runtime directory, the agent's units written by
/// `avp-agent --install-units` and enabled (the wants link `systemctl enable` makes).
struct Home {
    dir: TempDir,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("runtime");
        std::fs::create_dir(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let units = dir.path().join("units");
        let out = std::process::Command::new(avp_tests::agent_bin())
            .args(["--install-units", "--units-dir"])
            .arg(&units)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        Self { dir }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    fn enable_units(&self) {
        let wants = self.path("units/sockets.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        std::os::unix::fs::symlink(
            self.path("units/avp-agent.socket"),
            wants.join("avp-agent.socket"),
        )
        .unwrap();
    }
}

/// `avp --json doctor` for `agent` (or the socket `socket`), with `home`'s paths.
fn doctor(command: assert_cmd::Command, home: &Home, audit: &Path) -> (Output, Value) {
    let mut command = command;
    let out = command
        .env("XDG_RUNTIME_DIR", home.path("runtime"))
        .env("HOME", home.path(""))
        .args(["--json", "doctor", "--units-dir"])
        .arg(home.path("units"))
        .arg("--audit-log")
        .arg(audit)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
    (out, doc)
}

/// The check named `name` of a report.
fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no `{name}` check in {doc}"))
}

#[test]
fn a_healthy_setup_passes_every_check() {
    let agent = TestAgent::start_initialized();
    let home = Home::new();
    home.enable_units();
    let (out, doc) = doctor(avp(&agent), &home, &agent.audit_log);
    assert_eq!(code(&out), 0, "{doc}");
    assert_eq!(doc["ok"], true);
    for c in doc["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{c}");
    }
    // The text form: one line per check.
    let out = avp(&agent)
        .env("XDG_RUNTIME_DIR", home.path("runtime"))
        .args(["doctor", "--units-dir"])
        .arg(home.path("units"))
        .arg("--audit-log")
        .arg(&agent.audit_log)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    let report = text(&out.stdout);
    assert_eq!(
        report.lines().count(),
        doc["checks"].as_array().unwrap().len(),
        "{report}"
    );
    assert!(report.lines().all(|l| l.starts_with("ok ")), "{report}");
}

#[test]
fn no_agent_fails_with_the_way_to_start_one() {
    let home = Home::new();
    let nowhere = home.path("runtime/avp/agent.sock");
    let (out, doc) = doctor(avp_at(&nowhere), &home, &home.path("audit.jsonl"));
    assert_eq!(code(&out), 1, "{doc}");
    assert_eq!(doc["ok"], false);
    let agent = check(&doc, "agent");
    assert_eq!(agent["status"], "fail");
    assert!(
        agent["detail"].as_str().unwrap().contains("NO_AGENT"),
        "{agent}"
    );
    assert!(
        agent["fix"].as_str().unwrap().contains("avp-agent"),
        "{agent}"
    );
    assert_eq!(check(&doc, "vault")["status"], "skip");
}

#[test]
fn open_permissions_fail_with_the_chmod_that_fixes_them() {
    let agent = TestAgent::start_initialized();
    let home = Home::new();
    home.enable_units();
    std::fs::set_permissions(&agent.vault, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(home.path("runtime"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (out, doc) = doctor(avp(&agent), &home, &agent.audit_log);
    assert_eq!(code(&out), 1, "{doc}");
    let vault = check(&doc, "vault");
    assert_eq!(vault["status"], "fail", "{vault}");
    assert!(
        vault["detail"].as_str().unwrap().contains("0755"),
        "{vault}"
    );
    assert!(
        vault["fix"].as_str().unwrap().contains("chmod 700"),
        "{vault}"
    );
    assert_eq!(check(&doc, "runtime dir")["status"], "fail");
    assert_eq!(check(&doc, "agent")["status"], "ok");
}

#[test]
fn units_not_enabled_warn_and_an_unwritable_audit_log_fails() {
    let agent = TestAgent::start_initialized();
    let home = Home::new();
    // A directory where the audit log should be: not writable as a log, even by root.
    let audit = home.path("audit-is-a-dir");
    std::fs::create_dir(&audit).unwrap();
    let (out, doc) = doctor(avp(&agent), &home, &audit);
    assert_eq!(code(&out), 1, "{doc}");
    let units = check(&doc, "systemd units");
    assert_eq!(units["status"], "warn", "{units}");
    assert!(
        units["fix"].as_str().unwrap().contains("enable --now"),
        "{units}"
    );
    assert_eq!(check(&doc, "audit log")["status"], "fail");
}
