//! `--redis-min-replicas`: a write is acknowledged only once that many replicas confirm it
//! (`WAIT`). With none in reach it answers `BACKEND_UNAVAILABLE` and says why; the write
//! stays on the primary, so a read from that primary shows it (a failover might not).

use avp_protocol::{ErrorCode, Response};
use avp_tests::redis::{RedisServer, agent_args};
use avp_tests::{AgentOptions, TestAgent};

#[test]
fn a_write_no_replica_confirms_is_not_acknowledged() {
    let server = RedisServer::start_tcp();
    let plain = TestAgent::start_with(AgentOptions {
        args: agent_args(&server.url()),
        ..AgentOptions::default()
    });
    plain.init();
    let mut args = agent_args(&server.url());
    args.extend(
        ["--redis-min-replicas", "1", "--redis-wait-timeout", "200ms"]
            .iter()
            .map(|a| (*a).to_owned()),
    );
    let strict = TestAgent::start_with(AgentOptions {
        args,
        ..AgentOptions::default()
    });
    assert!(matches!(strict.unlock(), Response::Unlocked));
    let mut conn = strict.connect();
    let session = conn.session("w");
    match conn.store(&session, "k", b"v") {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::BackendUnavailable);
            assert!(
                e.message.contains("only 0 of the 1 replica(s)")
                    && e.message.contains("--redis-min-replicas")
                    && e.message.contains("200 ms"),
                "{}",
                e.message
            );
        }
        other => panic!("acknowledged without a replica: {other:?}"),
    }
    // It is on the primary: the next read (from the same primary) shows it.
    assert_eq!(conn.value(&session, "k"), Ok(b"v".to_vec()));
    // Without the setting (the default outside Sentinel mode), writes are acknowledged.
    let mut conn = plain.connect();
    let session = conn.session("w");
    assert!(matches!(
        conn.store(&session, "k", b"v2"),
        Response::Stored(_)
    ));
}
