//! A version-1 vault directory made by an earlier build is checked in under
//! `tests/fixtures/vault-v1/`; today's agent must unlock a copy of it and read back every
//! secret, every retained version, the labels and the expiry exactly. A change to the
//! on-disk format that forgets the vaults already on users' disks fails here.
//!
//! The fixture covers both file kinds: part of it was folded into `snapshot.age` (a
//! compaction, forced by 1,024 journal entries), the rest is still in the journal that
//! extends that snapshot. `generate_vault_v1_fixture` (ignored) is how it was made.

use avp_protocol::{Labels, Response, SessionId, Timestamp};
use avp_tests::cli::{self, avp};
use avp_tests::wire::labels;
use avp_tests::{AgentOptions, Conn, TestAgent};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The fixture vault's passphrase (scrypt work factor 10).
const FIXTURE_PASSPHRASE: &str = "avp vault-v1 fixture passphrase";

/// 2100-01-01T00:00:00Z: an expiry far enough ahead that the fixture never expires.
const FAR_EXPIRY: i64 = 4_102_444_800;
const FAR_EXPIRY_TEXT: &str = "2100-01-01T00:00:00Z";

/// A secret as the fixture must hold it.
struct Expected {
    workspace: &'static str,
    name: &'static str,
    /// Retained versions, oldest first: number and value.
    versions: Vec<(u32, Vec<u8>)>,
    labels: &'static [(&'static str, &'static str)],
    expires_at: Option<i64>,
}

fn many_value(version: u32) -> Vec<u8> {
    format!("many-{version}").into_bytes()
}

/// Everything the fixture holds, per workspace in name order. Which writes went to the
/// snapshot and which to the journal is in `generate_vault_v1_fixture`.
fn expected() -> Vec<Expected> {
    vec![
        Expected {
            workspace: "default",
            name: "api_key",
            versions: vec![
                (1, b"sk-live-1".to_vec()),
                (2, b"sk-live-2".to_vec()),
                (3, b"sk-live-3".to_vec()),
            ],
            labels: &[("env", "prod"), ("team", "payments")],
            expires_at: None,
        },
        Expected {
            workspace: "default",
            name: "db.password",
            versions: vec![
                (1, vec![0x00, 0xff, 0x80, b'\n']),
                (2, b"rotated\r\n".to_vec()),
            ],
            labels: &[("env", "prod")],
            expires_at: Some(FAR_EXPIRY),
        },
        Expected {
            workspace: "default",
            name: "empty",
            versions: vec![(1, Vec::new())],
            labels: &[],
            expires_at: None,
        },
        Expected {
            workspace: "default",
            name: "many",
            // 12 versions written, the last 10 retained.
            versions: (3..=12).map(|v| (v, many_value(v))).collect(),
            labels: &[],
            expires_at: None,
        },
        Expected {
            workspace: "team/job",
            name: "api_key",
            versions: vec![(1, b"job-key".to_vec())],
            labels: &[("ci", "true")],
            expires_at: None,
        },
        Expected {
            workspace: "team/job",
            name: "token",
            versions: vec![(1, b"tok-1".to_vec()), (2, b"tok-2".to_vec())],
            labels: &[("scope", "release")],
            expires_at: Some(FAR_EXPIRY),
        },
    ]
}

/// Versions written but no longer retained, and a secret deleted after the snapshot.
const GONE: &[(&str, &str, Option<u32>)] = &[
    ("default", "many", Some(1)),
    ("default", "many", Some(2)),
    ("default", "filler", None),
];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/vault-v1")
}

/// Every file of the checked-in vault, with its bytes.
fn fixture_files() -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(fixture_dir().join("vault"))
        .expect("tests/fixtures/vault-v1/vault exists")
        .map(|entry| {
            let entry = entry.expect("directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, fs::read(entry.path()).expect("read fixture file"))
        })
        .collect()
}

/// `times.txt`: `WORKSPACE NAME created UNIX` and `WORKSPACE NAME VERSION UNIX` lines,
/// the times the agent gave the fixture's writes.
fn fixture_times() -> BTreeMap<(String, String, String), i64> {
    let text = fs::read_to_string(fixture_dir().join("times.txt")).expect("times.txt");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [workspace, name, what, unix] = fields[..] else {
                panic!("times.txt: malformed line {line:?}");
            };
            let unix = unix.parse().expect("times.txt: a Unix time");
            ((workspace.into(), name.into(), what.into()), unix)
        })
        .collect()
}

fn time_of(times: &BTreeMap<(String, String, String), i64>, e: &Expected, what: &str) -> Timestamp {
    let key = (e.workspace.to_owned(), e.name.to_owned(), what.to_owned());
    Timestamp::from_unix(
        *times
            .get(&key)
            .unwrap_or_else(|| panic!("times.txt has no {key:?}")),
    )
}

/// Starts an agent on a copy of the fixture vault, with the modes a vault directory has.
fn agent_on_fixture_copy() -> (TestAgent, tempfile::TempDir) {
    let base = tempfile::Builder::new()
        .prefix("avp-fixture-")
        .tempdir()
        .expect("temp dir");
    let vault = base.path().join("vault");
    fs::create_dir(&vault).expect("create vault copy");
    fs::set_permissions(&vault, fs::Permissions::from_mode(0o700)).expect("chmod vault");
    for (name, bytes) in fixture_files() {
        let path = vault.join(&name);
        fs::write(&path, bytes).expect("copy fixture file");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod file");
    }
    let agent = TestAgent::start_with(AgentOptions {
        reuse_dir: Some(base.path().to_path_buf()),
        ..AgentOptions::default()
    });
    (agent, base)
}

fn session(conn: &mut Conn, workspace: &str) -> SessionId {
    conn.session(workspace)
}

#[test]
fn v1_vault_fixture_unlocks_and_reads_back_exactly() {
    let before = fixture_files();
    // The fixture holds both file kinds: a snapshot and a non-empty journal extending it.
    assert!(before.contains_key("identity.age") && before.contains_key("snapshot.age"));
    assert!(
        before
            .iter()
            .any(|(name, bytes)| name.starts_with("journal.") && !bytes.is_empty()),
        "the fixture must keep writes in its journal: {:?}",
        before.keys().collect::<Vec<_>>()
    );
    let times = fixture_times();
    let (agent, _copy) = agent_on_fixture_copy();

    // Unlock through the CLI, as a user would.
    avp(&agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(format!("{FIXTURE_PASSPHRASE}\n"))
        .assert()
        .success();

    let mut conn = agent.connect();
    let status = conn.status();
    assert_eq!((status.workspaces, status.secrets), (2, 6));

    let mut listed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for e in expected() {
        let s = session(&mut conn, e.workspace);
        let want_labels: Labels = labels(e.labels);
        let created_at = time_of(&times, &e, "created");
        let (current, _) = e.versions.last().expect("a secret has a version");
        let updated_at = time_of(&times, &e, &current.to_string());
        let expires_at = e.expires_at.map(Timestamp::from_unix);
        let what = format!("{}:{}", e.workspace, e.name);

        // Every retained version, and the current one when none is named.
        let mut asked: Vec<Option<u32>> = e.versions.iter().map(|(v, _)| Some(*v)).collect();
        asked.push(None);
        for version in asked {
            let secret = match conn.retrieve(&s, e.name, version) {
                Response::Retrieved(secret) => secret,
                other => panic!("{what} version {version:?}: {other:?}"),
            };
            let (number, value) = match version {
                Some(v) => e.versions.iter().find(|(n, _)| *n == v).expect("asked"),
                None => e.versions.last().expect("current"),
            };
            assert_eq!(secret.name.as_str(), e.name);
            assert_eq!(secret.version, *number, "{what}");
            assert_eq!(secret.value.expose_secret(), &value[..], "{what} v{number}");
            assert_eq!(secret.labels, want_labels, "{what}");
            assert_eq!(secret.created_at, created_at, "{what}");
            assert_eq!(secret.updated_at, updated_at, "{what}");
            assert_eq!(secret.expires_at, expires_at, "{what}");
        }

        // HISTORY: the retained versions and when each was written.
        let history = match conn.history(&s, e.name) {
            Response::History(history) => history,
            other => panic!("{what} history: {other:?}"),
        };
        let got: Vec<(u32, Timestamp)> = history
            .versions
            .iter()
            .map(|v| (v.version, v.created_at))
            .collect();
        let want: Vec<(u32, Timestamp)> = e
            .versions
            .iter()
            .map(|(v, _)| (*v, time_of(&times, &e, &v.to_string())))
            .collect();
        assert_eq!(got, want, "{what} history");

        // LIST shows the same metadata.
        let page = match conn.list(&s, want_labels.clone(), None, None) {
            Response::Listed(page) => page,
            other => panic!("{what} list: {other:?}"),
        };
        let meta = page
            .secrets
            .iter()
            .find(|m| m.name.as_str() == e.name)
            .unwrap_or_else(|| panic!("{what} is not listed"));
        assert_eq!(meta.version, *current, "{what}");
        assert_eq!(
            (meta.created_at, meta.updated_at, meta.expires_at),
            (created_at, updated_at, expires_at),
            "{what}"
        );
        listed
            .entry(e.workspace)
            .or_default()
            .push(e.name.to_owned());
    }

    // Each workspace holds exactly the expected names, in byte order.
    for (workspace, names) in listed {
        let s = session(&mut conn, workspace);
        assert_eq!(conn.names(&s), names, "workspace {workspace}");
    }

    // Versions past the retention and the secret deleted in the journal stay gone.
    for (workspace, name, version) in GONE {
        let s = session(&mut conn, workspace);
        let response = conn.retrieve(&s, name, *version);
        assert_eq!(
            avp_tests::wire::code_of(&response),
            Some(avp_protocol::ErrorCode::SecretNotFound),
            "{workspace}:{name} {version:?}: {response:?}"
        );
    }

    // The CLI reads the fixture too: exact bytes of a binary value's older version.
    let out = avp(&agent)
        .args(["get", "db.password", "--version", "1"])
        .output()
        .expect("run avp get");
    assert!(out.status.success(), "{}", cli::text(&out.stderr));
    assert_eq!(out.stdout, [0x00, 0xff, 0x80, b'\n']);

    drop(conn);
    drop(agent);
    assert_eq!(
        fixture_files(),
        before,
        "the checked-in fixture was modified"
    );
}

// ---------------------------------------------------------------------------------------
// How the fixture was made
// ---------------------------------------------------------------------------------------

fn cli_ok(agent: &TestAgent, args: &[&str], stdin: &[u8]) {
    let out = cli::run(agent, args, stdin);
    assert!(
        out.status.success(),
        "avp {args:?}: {}",
        cli::text(&out.stderr)
    );
}

fn journal_generation(vault: &Path) -> Option<u64> {
    fs::read_dir(vault)
        .expect("vault dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_prefix("journal.")?.parse().ok()
        })
        .max()
}

/// Regenerates the fixture with today's agent and CLI:
/// `AVP_FIXTURE_OUT=tests/fixtures/vault-v1 cargo test -p avp-tests --test agent
/// -- --ignored vault_fixture::generate_vault_v1_fixture` (after `cargo build --workspace`). Only on
/// purpose: the point of the fixture is that it was written by an *older* build.
#[test]
#[ignore = "writes the checked-in fixture; run by hand"]
fn generate_vault_v1_fixture() {
    let out = PathBuf::from(
        std::env::var_os("AVP_FIXTURE_OUT").expect("set AVP_FIXTURE_OUT to the output directory"),
    );
    let agent = TestAgent::start();
    cli_ok(
        &agent,
        &["init", "--passphrase-stdin", "--work-factor", "10"],
        format!("{FIXTURE_PASSPHRASE}\n").as_bytes(),
    );
    let mut conn = agent.connect();
    let default = conn.session("default");

    // Phase 1: what the snapshot will hold.
    let prod_payments = ["--label", "env=prod", "--label", "team=payments"];
    cli_ok(
        &agent,
        &[&["set", "api_key", "-"][..], &prod_payments[..]].concat(),
        b"sk-live-1",
    );
    cli_ok(&agent, &["set", "api_key", "-"], b"sk-live-2");
    cli_ok(
        &agent,
        &[
            "set",
            "db.password",
            "-",
            "--label",
            "env=prod",
            "--expires-at",
            FAR_EXPIRY_TEXT,
        ],
        &[0x00, 0xff, 0x80, b'\n'],
    );
    cli_ok(&agent, &["set", "empty", "-"], b"");
    for version in 1..=6 {
        cli_ok(&agent, &["set", "many", "-"], &many_value(version));
    }
    cli_ok(
        &agent,
        &[
            "-w", "team/job", "set", "api_key", "-", "--label", "ci=true",
        ],
        b"job-key",
    );
    cli_ok(&agent, &["set", "filler", "-"], b"filler-0");
    // Rotate the filler until the journal is folded into a new snapshot generation.
    let first = journal_generation(&agent.vault).expect("a journal");
    let mut n = 0u32;
    while journal_generation(&agent.vault) == Some(first) {
        n += 1;
        assert!(n < 2_000, "the journal was never compacted");
        let response = conn.rotate(&default, "filler", format!("filler-{n}").as_bytes());
        assert!(matches!(response, Response::Rotated(_)), "{response:?}");
    }

    // Phase 2: what stays in the journal.
    cli_ok(&agent, &["set", "api_key", "-"], b"sk-live-3");
    cli_ok(&agent, &["rotate", "db.password", "-"], b"rotated\r\n");
    for version in 7..=12 {
        cli_ok(&agent, &["set", "many", "-"], &many_value(version));
    }
    cli_ok(&agent, &["rm", "filler"], b"");
    cli_ok(
        &agent,
        &[
            "-w",
            "team/job",
            "set",
            "token",
            "-",
            "--label",
            "scope=deploy",
            "--expires-at",
            FAR_EXPIRY_TEXT,
        ],
        b"tok-1",
    );
    cli_ok(
        &agent,
        &[
            "-w",
            "team/job",
            "set",
            "token",
            "-",
            "--label",
            "scope=release",
        ],
        b"tok-2",
    );

    // The times the agent gave each write, for the reading test.
    let mut times = String::from(
        "# WORKSPACE NAME created|VERSION UNIX-TIME, as the agent recorded the fixture's writes\n",
    );
    for e in expected() {
        let s = conn.session(e.workspace);
        let Response::Retrieved(secret) = conn.retrieve(&s, e.name, None) else {
            panic!("{} missing", e.name);
        };
        times += &format!(
            "{} {} created {}\n",
            e.workspace,
            e.name,
            secret.created_at.unix()
        );
        let Response::History(history) = conn.history(&s, e.name) else {
            panic!("{} history", e.name);
        };
        for v in history.versions {
            times += &format!(
                "{} {} {} {}\n",
                e.workspace,
                e.name,
                v.version,
                v.created_at.unix()
            );
        }
    }
    drop(conn);
    let mut agent = agent;
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(agent.wait_exit(std::time::Duration::from_secs(30)), Some(0));
    let vault = agent.vault.clone();

    let out_vault = out.join("vault");
    let _ = fs::remove_dir_all(&out_vault);
    fs::create_dir_all(&out_vault).expect("create output");
    for entry in fs::read_dir(&vault).expect("vault dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        // The lock file belongs to a running agent, not to the vault's contents.
        if name == "identity.age" || name == "snapshot.age" || name.starts_with("journal.") {
            fs::copy(entry.path(), out_vault.join(&name)).expect("copy");
        }
    }
    fs::write(out.join("times.txt"), times).expect("write times.txt");
}
