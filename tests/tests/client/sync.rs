//! The blocking `Client` against the real agent: every typed call, and its typed errors.

use avp_client::{
    Client, Error, ErrorCode, Labels, Passphrase, SecretName, SecretValue, StoreOptions, Timestamp,
    VaultState, WorkspaceId,
};
use avp_tests::{TEST_PASSPHRASE, TestAgent};
use std::collections::BTreeMap;

fn name(text: &str) -> SecretName {
    SecretName::new(text).unwrap()
}

fn value(bytes: &[u8]) -> SecretValue {
    SecretValue::from_slice(bytes)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Labels::new(map).unwrap()
}

#[test]
fn admin_calls_init_lock_unlock_status_and_passphrase_change() {
    let agent = TestAgent::start();
    let mut client = Client::connect_to(&agent.socket).unwrap();
    assert_eq!(
        client.agent_protocol_version(),
        avp_client::PROTOCOL_VERSION
    );
    assert_eq!(client.socket(), agent.socket.as_path());
    assert_eq!(client.status().unwrap().state, VaultState::Uninitialized);
    let err = client.unlock(Passphrase::new(TEST_PASSPHRASE)).unwrap_err();
    assert!(matches!(err, Error::VaultNotInitialized), "{err:?}");

    client
        .init(Passphrase::new(TEST_PASSPHRASE), Some(10))
        .unwrap();
    assert_eq!(client.status().unwrap().state, VaultState::Unlocked);
    client.lock().unwrap();
    assert_eq!(client.status().unwrap().state, VaultState::Locked);
    let err = client.unlock(Passphrase::new("wrong")).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::AuthenticationFailed));
    client.unlock(Passphrase::new(TEST_PASSPHRASE)).unwrap();
    client.unlock(Passphrase::new(TEST_PASSPHRASE)).unwrap();

    client
        .change_passphrase(Passphrase::new(TEST_PASSPHRASE), Passphrase::new("new one"))
        .unwrap();
    client.lock().unwrap();
    client.unlock(Passphrase::new("new one")).unwrap();
    let info = client.discover().unwrap();
    assert_eq!(info.protocol_version, avp_client::PROTOCOL_VERSION);
    assert_eq!(info.limits.max_secret_value_length, 65_536);
}

#[test]
fn secret_calls_round_trip() {
    let agent = TestAgent::start_initialized();
    let mut client = Client::connect_to(&agent.socket).unwrap();
    let workspace = WorkspaceId::new("team/app").unwrap();
    let session = client.authenticate(&workspace).unwrap();
    assert_eq!(session.workspace(), &workspace);
    assert_eq!(session.ttl_seconds(), 3_600);
    assert!(session.expires_at() > Timestamp::now());
    assert!(!session.is_expired());

    let options = StoreOptions {
        labels: Some(labels(&[("env", "prod")])),
        expires_at: avp_client::ExpiryChange::Keep,
    };
    let stored = client
        .store(&session, &name("DB"), value(b"\x00v1\xff"), options)
        .unwrap();
    assert!(stored.created);
    assert_eq!(stored.version, 1);
    let stored = client
        .store(&session, &name("DB"), value(b"v2"), StoreOptions::default())
        .unwrap();
    assert_eq!((stored.created, stored.version), (false, 2));

    let secret = client.retrieve(&session, &name("DB"), None).unwrap();
    assert_eq!(secret.value.expose_secret(), b"v2");
    assert_eq!(
        secret.labels,
        labels(&[("env", "prod")]),
        "labels kept when omitted"
    );
    let old = client.retrieve(&session, &name("DB"), Some(1)).unwrap();
    assert_eq!(old.value.expose_secret(), b"\x00v1\xff");

    let rotated = client.rotate(&session, &name("DB"), value(b"v3")).unwrap();
    assert_eq!((rotated.previous_version, rotated.new_version), (2, 3));
    let history = client.history(&session, &name("DB")).unwrap();
    let versions: Vec<u32> = history.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, [1, 2, 3]);

    assert!(client.delete(&session, &name("DB")).unwrap().deleted);
    assert!(!client.delete(&session, &name("DB")).unwrap().deleted);
    let err = client.retrieve(&session, &name("DB"), None).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SecretNotFound));
    let err = client
        .rotate(&session, &name("DB"), value(b"x"))
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SecretNotFound));
}

#[test]
fn list_pages_and_list_all() {
    let agent = TestAgent::start_initialized();
    let mut client = Client::connect_to(&agent.socket).unwrap();
    let session = client
        .authenticate(&WorkspaceId::default_workspace())
        .unwrap();
    let count = 1_005;
    for i in 0..count {
        let tags = if i % 2 == 0 {
            labels(&[("even", "yes")])
        } else {
            Labels::empty()
        };
        let options = StoreOptions {
            labels: Some(tags),
            expires_at: avp_client::ExpiryChange::Keep,
        };
        client
            .store(&session, &name(&format!("S{i:05}")), value(b"x"), options)
            .unwrap();
    }
    let first = client
        .list(&session, &Labels::empty(), None, Some(2))
        .unwrap();
    let names: Vec<&str> = first.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["S00000", "S00001"]);
    let cursor = first.next_cursor.expect("more pages");
    let second = client
        .list(&session, &Labels::empty(), Some(cursor), Some(2))
        .unwrap();
    assert_eq!(second.secrets[0].name.as_str(), "S00002");

    let all = client.list_all(&session, &Labels::empty()).unwrap();
    assert_eq!(all.len(), count, "more than one page of 1000");
    assert!(all.windows(2).all(|w| w[0].name < w[1].name));
    let even = client
        .list_all(&session, &labels(&[("even", "yes")]))
        .unwrap();
    assert_eq!(even.len(), count.div_ceil(2));

    let err = client
        .list(&session, &Labels::empty(), None, Some(0))
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidRequest));
}

#[test]
fn sessions_end_on_terminate_and_on_lock() {
    let agent = TestAgent::start_initialized();
    let mut client = Client::connect_to(&agent.socket).unwrap();
    let ws = WorkspaceId::default_workspace();
    let session = client.authenticate(&ws).unwrap();
    let kept = session.clone();
    client.terminate(session).unwrap();
    let err = client.retrieve(&kept, &name("A"), None).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SessionTerminated));
    assert!(err.to_string().contains(" — "), "says what to do: {err}");

    let session = client
        .authenticate_with(&ws, "tests", Some(10_000_000))
        .unwrap();
    assert_eq!(session.ttl_seconds(), 86_400, "clamped to the maximum");
    client.lock().unwrap();
    let err = client
        .store(&session, &name("A"), value(b"x"), StoreOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::VaultLocked), "{err:?}");
    assert_eq!(err.to_string(), "vault is locked — run `avp unlock`");
    let err = client.authenticate(&ws).unwrap_err();
    assert!(matches!(err, Error::VaultLocked), "{err:?}");
}

#[test]
fn invalid_input_is_refused_before_sending() {
    let agent = TestAgent::start_initialized();
    let mut client = Client::connect_to(&agent.socket).unwrap();
    let session = client
        .authenticate(&WorkspaceId::default_workspace())
        .unwrap();
    let too_big = value(&vec![0u8; 65_537]);
    let err = client
        .store(&session, &name("BIG"), too_big, StoreOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ValueTooLarge {
                len: 65_537,
                max: 65_536
            }
        ),
        "{err:?}"
    );
    // The connection is still usable: nothing was sent.
    let max = value(&vec![1u8; 65_536]);
    client
        .store(&session, &name("BIG"), max, StoreOptions::default())
        .unwrap();
    assert_eq!(
        client
            .retrieve(&session, &name("BIG"), None)
            .unwrap()
            .value
            .len(),
        65_536
    );
}

#[test]
fn connect_uses_avp_sock() {
    let agent = TestAgent::start_initialized();
    // `Client::connect` reads the process environment, so run it in a child process that
    // has AVP_SOCK set: this test binary, filtered to the ignored helper below.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "--nocapture"])
        .arg(avp_tests::test_name(module_path!(), "connect_helper"))
        .env("AVP_SOCK", &agent.socket)
        .env("AVP_TEST_HELPER", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("HELPER-OK state=unlocked"), "{stdout}");
}

#[test]
#[ignore = "helper run in a child process by connect_uses_avp_sock"]
fn connect_helper() {
    assert_eq!(std::env::var("AVP_TEST_HELPER").as_deref(), Ok("1"));
    let state = Client::connect().unwrap().status().unwrap().state;
    println!("HELPER-OK state={}", state.as_str());
}

/// `authenticate_waiting` asks the agent's pinentry and gets a session once it unlocks;
/// the plain `authenticate` (which `get_secret` uses) answers `VaultLocked` at once and
/// opens no dialog.
#[test]
fn authenticate_waiting_unlocks_through_the_pinentry_and_plain_calls_do_not_wait() {
    let pin = format!("pin={TEST_PASSPHRASE}");
    let t = avp_tests::pinentry::ScriptedAgent::start(&[&pin], &[], &[]);
    let workspace = WorkspaceId::default_workspace();
    let mut client = Client::connect_to(&t.agent.socket).unwrap();
    let err = client.authenticate(&workspace).unwrap_err();
    assert!(matches!(err, Error::VaultLocked), "{err:?}");
    assert_eq!(t.spawns(), 0, "a plain authenticate opened a dialog");
    let session = client
        .authenticate_waiting(&workspace, "sync-test", None)
        .unwrap();
    assert_eq!(t.spawns(), 1);
    let stored = client
        .store(&session, &name("K"), value(b"v"), StoreOptions::default())
        .unwrap();
    assert_eq!(stored.version, 1);
}
