//! RETRIEVE and STORE against a Redis-backed agent (a `redis-server` of its own on a unix
//! socket, `appendfsync always`), next to the same floors as the vault rows. Reported, not
//! held to a target: every operation is a Redis round trip and an age decryption or
//! encryption, by design (no cache that could go stale between agents).

use crate::Config;
use crate::setup;
use crate::stats::{Row, Samples};
use crate::wire::{EchoServer, round_trip};
use avp_tests::redis::{RedisServer, agent_args};

fn reported(mut row: Row) -> Row {
    row.target = "— (reported)".into();
    row.met = true;
    row
}

/// RETRIEVE and STORE p50/p99 on a Redis-backed agent.
pub fn redis_rows(config: &Config) -> Vec<Row> {
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("avp-bench: redis-server not found; skipping the Redis rows");
        return Vec::new();
    }
    let redis = RedisServer::start();
    let args = agent_args(&redis.unix_url());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (agent, session) = setup::agent_with_secret_on(&args);
    let mut conn = agent.connect();
    let (request, reply_len) = setup::retrieve_frame(&mut conn, &session);
    let echo = EchoServer::start(reply_len);
    let mut echo_conn = echo.connect();
    let (mut buf, mut buf2) = (Vec::new(), Vec::new());
    let n = config.scale(50, 2_000);
    let retrieves = Samples::new(
        (0..n)
            .map(|_| round_trip(&mut conn.stream, &request, &mut buf))
            .collect(),
    );
    let floor = Samples::new(
        (0..n)
            .map(|_| round_trip(&mut echo_conn, &request, &mut buf2))
            .collect(),
    );
    let stores: Vec<_> = (0..config.scale(50, 1_000))
        .map(|i| {
            let frame = setup::store_frame(&session, &format!("r{i:06}"), &setup::value(i));
            round_trip(&mut conn.stream, &frame, &mut buf)
        })
        .collect();
    let stores = Samples::new(stores);
    vec![
        reported(Row::ratio(
            "Redis backend: RETRIEVE p50",
            retrieves.p50(),
            floor.p50(),
            0.0,
        )),
        reported(Row::ratio(
            "Redis backend: RETRIEVE p99",
            retrieves.p99(),
            floor.p99(),
            0.0,
        )),
        reported(Row {
            floor: "— (Redis fsyncs its AOF)".into(),
            ratio: "—".into(),
            ..Row::ratio("Redis backend: STORE p50", stores.p50(), stores.p50(), 0.0)
        }),
        reported(Row {
            floor: "—".into(),
            ratio: "—".into(),
            ..Row::ratio("Redis backend: STORE p99", stores.p99(), stores.p99(), 0.0)
        }),
    ]
}
