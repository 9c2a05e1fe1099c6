//! `avp_client::get_secret` from each source `AVP_SOURCE` selects: the agent (default),
//! the environment, and a directory. `get_secret` reads the process environment, so each
//! case runs this test binary again as a child with the environment it needs, filtered to
//! the ignored `helper` test, which prints what `get_secret` returned.

use avp_tests::TestAgent;
use avp_tests::cli::set_in;
use std::process::Command;

/// Runs the helper with `env` and returns its report line.
fn get_secret_with(name: &str, env: &[(&str, &std::ffi::OsStr)]) -> String {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            avp_tests::test_name(module_path!(), "helper").as_str(),
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("AVP_SOURCE")
        .env_remove("AVP_WORKSPACE")
        .env_remove("AVP_SOCK")
        .env_remove("AVP_SECRETS_DIR")
        .env("HELPER_NAME", name);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, result)| result))
        .unwrap_or_else(|| panic!("no result in {stdout}"))
        .to_owned()
}

#[test]
#[ignore = "run in a child process by the tests below"]
fn helper() {
    let name = std::env::var("HELPER_NAME").unwrap();
    match avp_client::get_secret(&name) {
        Ok(value) => {
            let hex: String = value
                .expose_secret()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            println!("RESULT ok {hex}");
        }
        Err(err) => println!(
            "RESULT err {} {err}",
            err.code().map_or("NONE", |c| c.as_str())
        ),
    }
}

#[test]
fn from_the_agent_by_default_in_avp_workspace() {
    let mut agent = TestAgent::start_initialized();
    set_in(&agent, "default", "DB_PASSWORD", b"default\n");
    set_in(&agent, "svc/app", "DB_PASSWORD", b"\xffapp");
    let socket = agent.socket.clone();
    let sock = socket.as_os_str();
    assert_eq!(
        get_secret_with("DB_PASSWORD", &[("AVP_SOCK", sock)]),
        "ok 64656661756c740a"
    );
    let result = get_secret_with(
        "DB_PASSWORD",
        &[
            ("AVP_SOCK", sock),
            ("AVP_SOURCE", "agent".as_ref()),
            ("AVP_WORKSPACE", "svc/app".as_ref()),
        ],
    );
    assert_eq!(result, "ok ff617070");
    let missing = get_secret_with("NOPE", &[("AVP_SOCK", sock)]);
    assert!(
        missing.starts_with("err SECRET_NOT_FOUND no secret named `NOPE` in workspace `default`"),
        "{missing}"
    );
    agent.kill();
    let gone = get_secret_with("DB_PASSWORD", &[("AVP_SOCK", sock)]);
    assert!(gone.starts_with("err NONE no agent answers on"), "{gone}");
}

#[test]
fn from_the_environment() {
    let result = get_secret_with(
        "API_TOKEN",
        &[
            ("AVP_SOURCE", "env".as_ref()),
            ("API_TOKEN", "tok en\n".as_ref()),
        ],
    );
    assert_eq!(result, "ok 746f6b20656e0a");
    let empty = get_secret_with(
        "API_TOKEN",
        &[("AVP_SOURCE", "env".as_ref()), ("API_TOKEN", "".as_ref())],
    );
    assert_eq!(
        empty, "ok ",
        "an empty variable is an empty value, not a missing one"
    );
    let missing = get_secret_with("API_TOKEN", &[("AVP_SOURCE", "env".as_ref())]);
    assert_eq!(
        missing,
        "err SECRET_NOT_FOUND no secret named `API_TOKEN` in the environment — store it there first"
    );
}

#[test]
fn from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("TLS_KEY"), b"-----KEY-----\n\x00").unwrap();
    let env = [
        ("AVP_SOURCE", "dir".as_ref()),
        ("AVP_SECRETS_DIR", dir.path().as_os_str()),
    ];
    assert_eq!(
        get_secret_with("TLS_KEY", &env),
        "ok 2d2d2d2d2d4b45592d2d2d2d2d0a00"
    );
    let missing = get_secret_with("OTHER", &env);
    assert!(
        missing.starts_with("err SECRET_NOT_FOUND no secret named `OTHER` in directory "),
        "{missing}"
    );
    let unset = get_secret_with("TLS_KEY", &[("AVP_SOURCE", "dir".as_ref())]);
    assert!(
        unset.starts_with("err NONE AVP_SOURCE=dir needs AVP_SECRETS_DIR"),
        "{unset}"
    );
}

#[test]
fn bad_settings_are_errors() {
    let unknown = get_secret_with("A", &[("AVP_SOURCE", "vault".as_ref())]);
    assert!(
        unknown.starts_with("err NONE AVP_SOURCE must be"),
        "{unknown}"
    );
    let invalid = get_secret_with("not valid", &[("AVP_SOURCE", "env".as_ref())]);
    assert!(invalid.starts_with("err INVALID_NAME"), "{invalid}");
}
