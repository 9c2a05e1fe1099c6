//! `avp import --from avp-sdk FILE --password-stdin`: a vault written by the real Python AVP
//! SDK (`avp-sdk` from PyPI, `FileBackend`) is read back: values, labels and expiry of the
//! `-w` workspace; expired secrets left out; a wrong password imports nothing.
//!
//! Needs the SDK: `AVP_PYTHON` names a python that can `import avp` (`.ci/run` makes
//! `target/py-venv` and sets it). Without it the tests print why and pass.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, get, get_in, text};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The python with avp-sdk, or `None` (after saying why) when there is none.
fn sdk_python() -> Option<PathBuf> {
    let Some(python) = std::env::var_os("AVP_PYTHON") else {
        eprintln!("skipped: AVP_PYTHON is not set (a python with `pip install avp-sdk`)");
        return None;
    };
    let ok = Command::new(&python)
        .args(["-c", "import avp.backends.file"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: {python:?} cannot import avp (pip install avp-sdk)");
        return None;
    }
    Some(python.into())
}

const WRITE_VAULT: &str = r#"
import sys
from datetime import datetime, timedelta
from avp.backends.file import FileBackend

vault = FileBackend(sys.argv[1], password="sdk pass phrase")
vault.store("default", "API_KEY", b"key-from-the-sdk", labels={"env": "dev", "team": "core"})
vault.store("default", "BINARY", bytes(range(256)))
vault.store("default", "LATER", b"still valid", expires_at=datetime.utcnow() + timedelta(days=2))
vault.store("default", "GONE", b"expired", expires_at=datetime.utcnow() - timedelta(days=1))
vault.store("prod", "DB_URL", b"postgres://prod")
vault.close()
"#;

fn write_vault(python: &Path, path: &Path) {
    let out = Command::new(python)
        .args(["-c", WRITE_VAULT])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn import(agent: &TestAgent, ws: &str, vault: &Path, password: &[u8]) -> std::process::Output {
    avp(agent)
        .args(["--json", "-w", ws, "import", "--from", "avp-sdk"])
        .arg(vault)
        .arg("--password-stdin")
        .write_stdin(password.to_vec())
        .output()
        .unwrap()
}

#[test]
fn a_vault_the_sdk_wrote_imports_values_labels_and_expiry() {
    let Some(python) = sdk_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("secrets.enc");
    write_vault(&python, &vault);
    let agent = TestAgent::start_initialized();

    let out = import(&agent, "default", &vault, b"sdk pass phrase\n");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["imported"], 3, "GONE has expired: {doc}");
    assert_eq!(get(&agent, "API_KEY"), b"key-from-the-sdk");
    assert_eq!(get(&agent, "BINARY"), (0..=255).collect::<Vec<u8>>());
    assert_eq!(get(&agent, "LATER"), b"still valid");

    let out = avp(&agent).args(["--json", "ls"]).output().unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = |name: &str| {
        listed["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
    };
    assert_eq!(
        secret("API_KEY")["labels"],
        serde_json::json!({"env": "dev", "team": "core"})
    );
    assert!(secret("LATER")["expires_at"].is_string());
    assert!(secret("BINARY")["expires_at"].is_null());
    assert_eq!(listed["secrets"].as_array().unwrap().len(), 3);

    let out = import(&agent, "prod", &vault, b"sdk pass phrase\n");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(get_in(&agent, "prod", "DB_URL"), b"postgres://prod");
}

#[test]
fn a_wrong_password_or_workspace_imports_nothing() {
    let Some(python) = sdk_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("secrets.enc");
    write_vault(&python, &vault);
    let agent = TestAgent::start_initialized();

    let out = import(&agent, "default", &vault, b"not the password\n");
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("AUTHENTICATION_FAILED"), "{stderr}");
    assert!(!stderr.contains("not the password"), "{stderr}");

    let out = import(&agent, "staging", &vault, b"sdk pass phrase\n");
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no workspace `staging`") && stderr.contains("default, prod"),
        "{stderr}"
    );
    let out = avp(&agent).args(["--json", "ls"]).output().unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["secrets"], serde_json::json!([]));
}

#[test]
fn without_a_terminal_the_password_must_come_with_password_stdin() {
    let agent = TestAgent::start_initialized();
    let out = avp(&agent)
        .args(["import", "--from", "avp-sdk", "/nonexistent/secrets.enc"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--password-stdin"), "{stderr}");
}
