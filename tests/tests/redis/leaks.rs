//! Nothing readable in Redis: after storing, rotating past the history, labelling,
//! expiring and deleting secrets with marker names, values, labels and workspace, neither
//! `redis-cli --scan` nor a dump of every key (GET / HGETALL / SMEMBERS / ZRANGE / DUMP),
//! nor the AOF on disk, contains any of them in clear — and deleted or trimmed data is gone.

use avp_protocol::{ExpiryChange, Passphrase, Request, Response, Timestamp};
use avp_tests::redis::{RedisServer, agent_args, contains};
use avp_tests::wire::labels;
use avp_tests::{AgentOptions, TestAgent};

const WORKSPACE: &str = "ws-WSMARK";
const PASSPHRASE: &str = "pass-PASSMARK-phrase";

/// Every marker: none may appear anywhere in Redis.
const MARKERS: [&str; 9] = [
    "WSMARK", "NAMEMARK", "VALMARK", "LKEYMARK", "LVALMARK", "PASSMARK", "ROTMARK", "EXPMARK",
    "DELMARK",
];

fn ok(response: Response) {
    assert!(
        matches!(
            response,
            Response::Stored(_) | Response::Rotated(_) | Response::Deleted(_)
        ),
        "{response:?}"
    );
}

#[test]
fn redis_holds_no_name_value_label_or_passphrase_in_clear() {
    let server = RedisServer::start();
    let agent = TestAgent::start_with(AgentOptions {
        args: agent_args(&server.url()),
        ..AgentOptions::default()
    });
    let mut conn = agent.connect();
    let init = conn.call(&Request::Init {
        passphrase: Passphrase::new(PASSPHRASE),
        work_factor: Some(10),
    });
    assert!(matches!(init, Response::Initialized), "{init:?}");
    let s = conn.session(WORKSPACE);
    let marked = labels(&[("LKEYMARK-env", "LVALMARK-prod")]);
    for i in 0..5 {
        ok(conn.store_full(
            &s,
            &format!("NAMEMARK_{i}"),
            format!("VALMARK-secret-{i}").as_bytes(),
            Some(marked.clone()),
            ExpiryChange::Keep,
        ));
    }
    // Twelve versions: the two oldest are trimmed from the history.
    for v in 0..12 {
        ok(conn.rotate(&s, "NAMEMARK_0", format!("ROTMARK-{v:02}").as_bytes()));
    }
    let soon = Timestamp::from_unix(Timestamp::now().unix() + 2);
    ok(conn.store_full(
        &s,
        "NAMEMARK_exp",
        b"EXPMARK-value",
        None,
        ExpiryChange::Set(soon),
    ));
    ok(conn.store(&s, "NAMEMARK_del", b"DELMARK-value"));
    ok(conn.delete(&s, "NAMEMARK_del"));
    // A binary value: not even its bytes appear.
    let binary: Vec<u8> = (0u8..=255).rev().collect();
    ok(conn.store(&s, "NAMEMARK_bin", &binary));

    let keys = server.keys();
    let dump = server.dump();
    // Positive control: the dump does hold the records — as age files.
    assert!(dump.len() > 10_000, "the dump holds the records");
    assert!(contains(&dump, b"age-encryption.org/v1\n-> X25519 "));
    for marker in MARKERS {
        assert!(
            !keys.iter().any(|k| k.contains(marker)),
            "{marker} in a key name: {keys:?}"
        );
        assert!(
            !contains(&dump, marker.as_bytes()),
            "{marker} in Redis's data"
        );
    }
    assert!(
        !contains(&dump, &binary[..64]),
        "binary value in Redis's data"
    );
    assert!(
        keys.iter().all(|k| k.starts_with("avp:1:")),
        "only avp's keys: {keys:?}"
    );

    // What Redis can count: 1 identity, 1 workspace set, the workspace's generation, log
    // and metadata hash, one hash per live secret (5 + expiring + binary).
    assert_eq!(keys.len(), 5 + 7, "{keys:?}");
    let rotated = keys
        .iter()
        .filter(|k| k.starts_with("avp:1:s:"))
        .map(|k| server.cli(&["HLEN", k]))
        .map(|n| String::from_utf8_lossy(&n).trim().parse::<u32>().unwrap())
        .max()
        .unwrap();
    assert_eq!(
        rotated,
        10 + 1,
        "10 retained versions and the current pointer"
    );

    // Once expired, a write purges the secret's records.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    assert_eq!(conn.names(&s).len(), 6, "expired secret invisible");
    ok(conn.store(&s, "NAMEMARK_after", b"VALMARK-after"));
    assert_eq!(
        server.keys().len(),
        5 + 7,
        "expired secret purged, one added"
    );
    // Nor does the agent's own (debug-level) log hold a value, label or the passphrase.
    let log = agent.logs();
    for marker in [
        "VALMARK", "ROTMARK", "EXPMARK", "DELMARK", "LVALMARK", "PASSMARK",
    ] {
        assert!(!log.contains(marker), "{marker} in the agent log");
    }
    for name in conn.names(&s) {
        ok(conn.delete(&s, &name));
    }
    let left = server.keys();
    assert_eq!(
        left.len(),
        3,
        "identity, generation counter and log: {left:?}"
    );
}
