//! With `--backend redis`, the master keys and the decrypted metadata live in locked memory:
//! while unlocked, the vault's X25519 identity (its `AGE-SECRET-KEY-1…` text and its 32-byte
//! scalar), the HMAC key that names Redis keys, and the secret names, labels and workspace
//! ids the agent decrypted are found only in mappings the kernel holds locked (never
//! swapped, left out of core dumps); after LOCK, nowhere in the agent's memory.
//!
//! The test knows the passphrase, so it unwraps the identity stored in Redis itself and
//! derives the naming key the way the agent does (HKDF-SHA-256, keys.rs), to hunt for both.
//! Reading another process's memory takes root (the agent is not dumpable), as in CI.

use age::secrecy::ExposeSecret;
use avp_protocol::{ExpiryChange, Passphrase, Request, Response};
use avp_tests::redis::{RedisServer, agent_args};
use avp_tests::require_root;
use avp_tests::rng::Rng;
use avp_tests::sys::{scan_memory, scan_unlocked_memory, status_bytes};
use avp_tests::wire::labels;
use avp_tests::{AgentOptions, TestAgent};

/// The 32 bytes behind an `AGE-SECRET-KEY-1…` Bech32 string (checksum not verified: the
/// string comes from age itself).
fn bech32_bytes(text: &str) -> Vec<u8> {
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let lower = text.to_ascii_lowercase();
    let data = &lower[lower.rfind('1').expect("separator") + 1..];
    let groups: Vec<u32> = data
        .bytes()
        .map(|c| CHARSET.iter().position(|&x| x == c).expect("bech32") as u32)
        .collect();
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for group in &groups[..groups.len() - 6] {
        acc = (acc << 5) | group;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn redis_backend_keys_and_metadata_stay_in_locked_memory_and_go_at_lock() {
    require_root!("it reads a non-dumpable process's memory");
    let mut rng = Rng::from_env("redis-memory");
    let mut marker = |what: &str| format!("{what}{:016x}", rng.next_u64());
    let (name, workspace) = (marker("NAMEMARK"), marker("wsmark"));
    let (label_key, label_value) = (marker("lkeymark"), marker("LVALMARK"));
    let passphrase = marker("PASSMARK");

    let server = RedisServer::start();
    let agent = TestAgent::start_with(AgentOptions {
        args: agent_args(&server.url()),
        ..AgentOptions::default()
    });
    let pid = agent.pid();
    let mut conn = agent.connect();
    let init = conn.call(&Request::Init {
        passphrase: Passphrase::new(&passphrase),
        work_factor: Some(10),
    });
    assert!(matches!(init, Response::Initialized), "{init:?}");
    // Lock and unlock, so the keys in memory are the ones unwrapped from Redis.
    assert!(matches!(conn.lock(), Response::Locked));
    let unlock = conn.call(&Request::Unlock {
        passphrase: Passphrase::new(&passphrase),
    });
    assert!(matches!(unlock, Response::Unlocked), "{unlock:?}");
    let s = conn.session(&workspace);
    let marked = labels(&[(label_key.as_str(), label_value.as_str())]);
    for i in 0..3 {
        let stored = conn.store_full(
            &s,
            &format!("{name}{i}"),
            b"v",
            Some(marked.clone()),
            ExpiryChange::Keep,
        );
        assert!(matches!(stored, Response::Stored(_)), "{stored:?}");
    }
    // Reads that decrypt records and fill the metadata cache.
    assert_eq!(conn.names(&s).len(), 3);
    assert_eq!(conn.value(&s, &format!("{name}1")), Ok(b"v".to_vec()));
    let _ = conn.history(&s, &format!("{name}2"));
    // A live session holds its workspace id in the session table (not the backend), in
    // ordinary memory; an ended one forgets it. End it, so what is left is the backend's.
    let terminated = conn.call(&Request::Terminate { session: s });
    assert!(matches!(terminated, Response::Terminated), "{terminated:?}");
    drop(conn);

    // The key material, from what the test knows: the wrapped identity in Redis and the
    // passphrase.
    let mut wrapped = server.cli(&["GET", "avp:1:identity"]);
    assert_eq!(
        wrapped.pop(),
        Some(b'\n'),
        "redis-cli ends its output with a newline"
    );
    let identity =
        avp_agent::storage::crypto::unwrap_identity(&wrapped, &Passphrase::new(&passphrase))
            .expect("the test unwraps the vault identity");
    let secret_text = identity.to_string().expose_secret().to_owned();
    let scalar = bech32_bytes(&secret_text);
    assert_eq!(scalar.len(), 32);
    let mut naming_key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b"avp redis backend v1"), secret_text.as_bytes())
        .expand(b"key names", &mut naming_key)
        .unwrap();

    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("identity text", secret_text.as_bytes().to_vec()),
        ("identity scalar", scalar.clone()),
        ("naming key", naming_key.to_vec()),
        ("secret name", name.as_bytes().to_vec()),
        ("label key", label_key.as_bytes().to_vec()),
        ("label value", label_value.as_bytes().to_vec()),
        ("workspace id", workspace.as_bytes().to_vec()),
    ];

    // Unlocked: the memory is locked, the scan sees the keys and names (so it works), and
    // every copy is in a locked mapping.
    let mut admin = agent.connect();
    assert!(
        status_bytes(pid, "VmLck").unwrap_or(0) > 0,
        "VmLck is 0 while unlocked"
    );
    for (what, needle) in [&needles[0], &needles[2], &needles[3], &needles[5]] {
        assert!(
            !scan_memory(pid, needle).is_empty(),
            "the scan finds the {what} while unlocked"
        );
    }
    let mut report = String::new();
    for (what, needle) in &needles {
        let outside = scan_unlocked_memory(pid, needle);
        if !outside.is_empty() {
            report += &format!(
                "unlocked: the {what} ({}) is in memory that is not locked:\n{}\n",
                hex(needle),
                outside.join("\n")
            );
        }
    }
    assert!(report.is_empty(), "{report}");

    assert!(matches!(admin.lock(), Response::Locked));
    drop(admin);
    for (what, needle) in &needles {
        let hits = scan_memory(pid, needle);
        assert!(
            hits.is_empty(),
            "after LOCK the {what} is still in the agent's memory:\n{}",
            hits.join("\n")
        );
    }
}
