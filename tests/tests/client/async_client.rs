//! The async `AsyncClient` against the real agent: the same typed calls on tokio.

use avp_client::{
    AsyncClient, Error, ErrorCode, Labels, Passphrase, SecretName, SecretValue, StoreOptions,
    VaultState, WorkspaceId,
};
use avp_tests::{TEST_PASSPHRASE, TestAgent};
use std::time::Duration;

fn name(text: &str) -> SecretName {
    SecretName::new(text).unwrap()
}

#[tokio::test]
async fn the_whole_flow() {
    let agent = TestAgent::start();
    let mut client = AsyncClient::connect_to(&agent.socket).await.unwrap();
    assert_eq!(
        client.agent_protocol_version(),
        avp_client::PROTOCOL_VERSION
    );
    assert_eq!(
        client.status().await.unwrap().state,
        VaultState::Uninitialized
    );
    client
        .init(Passphrase::new(TEST_PASSPHRASE), Some(10))
        .await
        .unwrap();
    assert_eq!(client.discover().await.unwrap().conformance, "full");

    let session = client
        .authenticate(&WorkspaceId::default_workspace())
        .await
        .unwrap();
    let stored = client
        .store(
            &session,
            &name("K"),
            SecretValue::from_slice(b"v1"),
            StoreOptions::default(),
        )
        .await
        .unwrap();
    assert!(stored.created);
    let rotated = client
        .rotate(&session, &name("K"), SecretValue::from_slice(b"\xffv2"))
        .await
        .unwrap();
    assert_eq!(rotated.new_version, 2);
    let secret = client.retrieve(&session, &name("K"), None).await.unwrap();
    assert_eq!(secret.value.expose_secret(), b"\xffv2");
    assert_eq!(
        client
            .history(&session, &name("K"))
            .await
            .unwrap()
            .versions
            .len(),
        2
    );
    let page = client
        .list(&session, &Labels::empty(), None, Some(1))
        .await
        .unwrap();
    assert_eq!(page.secrets.len(), 1);
    assert_eq!(
        client
            .list_all(&session, &Labels::empty())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(client.delete(&session, &name("K")).await.unwrap().deleted);

    let kept = session.clone();
    client.terminate(session).await.unwrap();
    let err = client.retrieve(&kept, &name("K"), None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SessionTerminated));

    client
        .change_passphrase(Passphrase::new(TEST_PASSPHRASE), Passphrase::new("other"))
        .await
        .unwrap();
    client.lock().await.unwrap();
    let err = client
        .authenticate(&WorkspaceId::default_workspace())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VaultLocked), "{err:?}");
    client.unlock(Passphrase::new("other")).await.unwrap();
}

#[tokio::test]
async fn many_clients_at_once() {
    let agent = TestAgent::start_initialized();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let socket = agent.socket.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = AsyncClient::connect_to(&socket).await.unwrap();
            let ws = WorkspaceId::new(format!("ws{i}")).unwrap();
            let session = client.authenticate(&ws).await.unwrap();
            for n in 0..10 {
                let value = SecretValue::from_slice(format!("{i}-{n}").as_bytes());
                client
                    .store(&session, &name("K"), value, StoreOptions::default())
                    .await
                    .unwrap();
            }
            let secret = client.retrieve(&session, &name("K"), None).await.unwrap();
            assert_eq!(secret.value.expose_secret(), format!("{i}-9").as_bytes());
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn no_agent_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = AsyncClient::connect_to(dir.path().join("none.sock"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoAgent { .. }), "{err:?}");
    assert!(err.is_unreachable());
}

/// The async client's `authenticate_waiting` gets its session through the pinentry too.
#[tokio::test]
async fn authenticate_waiting_unlocks_through_the_pinentry() {
    let pin = format!("pin={TEST_PASSPHRASE}");
    let t = avp_tests::pinentry::ScriptedAgent::start(&[&pin], &[], &[]);
    let workspace = WorkspaceId::default_workspace();
    let mut client = AsyncClient::connect_to(&t.agent.socket).await.unwrap();
    let err = client.authenticate(&workspace).await.unwrap_err();
    assert!(matches!(err, Error::VaultLocked), "{err:?}");
    let session = client
        .authenticate_waiting(&workspace, "async-test", None)
        .await
        .unwrap();
    assert_eq!(t.spawns(), 1);
    client.terminate(session).await.unwrap();
}

/// Issue 16: `AsyncClient::retrieve_once`, the async twin of `Client::retrieve_once` (one
/// write of Hello + AUTHENTICATE + RETRIEVE + TERMINATE): the value or version asked, in the
/// workspace asked, with the session ended on return; the same answers as the blocking
/// one, the first refusal as the error (VAULT_LOCKED, not SESSION_NOT_FOUND).
#[tokio::test]
async fn retrieve_once_reads_in_one_write_like_the_blocking_client() {
    let agent = TestAgent::start_initialized();
    let team = WorkspaceId::new("team").unwrap();
    let mut client = AsyncClient::connect_to(&agent.socket).await.unwrap();
    for (workspace, values) in [
        (&team, &[&b"v1"[..], b"\xffv2"][..]),
        (&WorkspaceId::default_workspace(), &[b"other"]),
    ] {
        let session = client.authenticate(workspace).await.unwrap();
        for value in values {
            client
                .store(
                    &session,
                    &name("K"),
                    SecretValue::from_slice(value),
                    StoreOptions::default(),
                )
                .await
                .unwrap();
        }
        client.terminate(session).await.unwrap();
    }

    let once = |workspace: WorkspaceId, secret: &'static str, version: Option<u32>| {
        let socket = agent.socket.clone();
        async move {
            let got = AsyncClient::retrieve_once(
                &socket,
                &workspace,
                "async-once",
                &name(secret),
                version,
            )
            .await;
            let blocking = tokio::task::spawn_blocking(move || {
                avp_client::Client::retrieve_once(
                    &socket,
                    &workspace,
                    "blocking-once",
                    &name(secret),
                    version,
                )
            })
            .await
            .unwrap();
            match (&got, &blocking) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.value.expose_secret(), b.value.expose_secret());
                    assert_eq!(a.version, b.version);
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                _ => panic!("async {got:?}, blocking {blocking:?}"),
            }
            got
        }
    };
    let secret = once(team.clone(), "K", None).await.unwrap();
    assert_eq!(secret.value.expose_secret(), b"\xffv2");
    assert_eq!(secret.version, 2);
    let secret = once(team.clone(), "K", Some(1)).await.unwrap();
    assert_eq!(secret.value.expose_secret(), b"v1");
    let secret = once(WorkspaceId::default_workspace(), "K", None)
        .await
        .unwrap();
    assert_eq!(secret.value.expose_secret(), b"other");
    let err = once(team.clone(), "MISSING", None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SecretNotFound), "{err:?}");

    // Every one-shot session was ended before the call returned.
    assert_eq!(client.status().await.unwrap().sessions, 0);

    client.lock().await.unwrap();
    let err = once(team.clone(), "K", None).await.unwrap_err();
    assert!(matches!(err, Error::VaultLocked), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    let err = AsyncClient::retrieve_once(
        dir.path().join("none.sock"),
        &team,
        "async-once",
        &name("K"),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NoAgent { .. }), "{err:?}");
}

/// `AsyncClient::retrieve_once` sends its four requests before it reads any answer: a peer
/// that reads all four frames before answering (as `tests/cli/fast_get.rs` does for
/// `avp get`) gets them, in order, and its answers come back in order.
#[tokio::test]
async fn retrieve_once_sends_its_four_requests_before_reading() {
    use avp_protocol::Request;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let peer = avp_tests::wire::locked_peer_reading_four_frames(&socket);
    let team = WorkspaceId::new("team").unwrap();
    let got = tokio::time::timeout(
        Duration::from_secs(30),
        AsyncClient::retrieve_once(&socket, &team, "async-once", &name("API_KEY"), Some(3)),
    )
    .await
    .expect("answered");
    let requests = tokio::task::spawn_blocking(move || peer.join().unwrap())
        .await
        .unwrap()
        .expect("four requests before any answer");
    assert!(matches!(requests[0], Request::Hello { .. }), "{requests:?}");
    assert!(
        matches!(&requests[1], Request::Authenticate { workspace, agent_id, .. }
            if workspace == &team && agent_id == "async-once"),
        "{requests:?}"
    );
    assert!(
        matches!(&requests[2], Request::RetrieveInConnectionSession { name, version: Some(3) }
            if name.as_str() == "API_KEY"),
        "{requests:?}"
    );
    assert_eq!(requests[3], Request::TerminateConnectionSession);
    // The first refusal is the error: the locked vault, not the missing session.
    let err = got.unwrap_err();
    assert!(matches!(err, Error::VaultLocked), "{err:?}");
}
