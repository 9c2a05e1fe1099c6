//! Secrets never reach the disk in clear, the log (even at `AVP_LOG=trace`) or the audit log.

use avp_protocol::{Passphrase, Request, Response};
use avp_tests::json::Codec;
use avp_tests::raw::RawRequest;
use avp_tests::{AgentOptions, TestAgent};
use std::io::Write;
use std::path::Path;

const VALUE_MARKER: &str = "VALUEMARKER7d1f";
const PASS_MARKER: &str = "PASSMARKER93ab";
/// Long enough that random ciphertext cannot contain it by chance (a two-letter name could).
const NAME_MARKER: &str = "NameMarker4c2e";

/// The base64 text (PROTOCOL.md §12.5.3) of the longest prefix of `bytes` that encodes on
/// its own: it appears in the base64 of any value that starts with `bytes`.
fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() / 3 * 3])
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn markers_never_reach_files_logs_or_the_audit_trail() {
    markers_never_reach_files_logs_or_audit(Codec::Bincode);
}

/// The same over the JSON wire (PROTOCOL.md §12), where values travel as base64 and
/// passphrases as JSON strings.
#[test]
fn markers_sent_over_json_never_reach_files_logs_or_the_audit_trail() {
    markers_never_reach_files_logs_or_audit(Codec::Json);
}

fn markers_never_reach_files_logs_or_audit(codec: Codec) {
    let agent = TestAgent::start_with(AgentOptions {
        env: vec![("AVP_LOG".into(), "trace".into())],
        ..Default::default()
    });
    let mut conn = match codec {
        Codec::Bincode => agent.connect(),
        Codec::Json => agent.connect_json(),
    };
    let passphrase = format!("{PASS_MARKER} horse");
    let init = conn.call(&Request::Init {
        passphrase: Passphrase::new(&passphrase),
        work_factor: Some(10),
    });
    assert!(matches!(init, Response::Initialized));
    let s = conn.session("default");
    for i in 0..5 {
        let value = format!("{VALUE_MARKER}-{i}");
        assert!(matches!(
            conn.store(&s, &format!("{NAME_MARKER}{i}"), value.as_bytes()),
            Response::Stored(_)
        ));
    }
    assert!(matches!(
        conn.rotate(&s, &format!("{NAME_MARKER}0"), VALUE_MARKER.as_bytes()),
        Response::Rotated(_)
    ));
    assert_eq!(
        conn.value(&s, &format!("{NAME_MARKER}1")).unwrap(),
        format!("{VALUE_MARKER}-1").as_bytes()
    );
    let _ = conn.names(&s);
    let _ = conn.history(&s, &format!("{NAME_MARKER}0"));
    // Refused requests carrying the markers: an invalid name, an oversized value, a wrong
    // passphrase, a wrong old passphrase.
    let bad_name = RawRequest::Store {
        session: s.expose().to_owned(),
        name: format!("{VALUE_MARKER} not a name"),
        value: VALUE_MARKER.as_bytes().to_vec(),
        labels: None,
        expires_at: None,
    };
    let answer = match codec {
        Codec::Bincode => format!("{:?}", conn.call_raw(&bad_name)),
        Codec::Json => {
            // The same refused STORE as a JSON line: the value as base64, as a client sends it.
            let line = format!(
                "{{\"op\":\"STORE\",\"session_id\":\"{}\",\"name\":\"{VALUE_MARKER} not a name\",\"value\":\"{}\"}}\n",
                s.expose(),
                base64_of(VALUE_MARKER.as_bytes()),
            );
            conn.stream.write_all(line.as_bytes()).unwrap();
            String::from_utf8(avp_tests::json::read_line(&mut conn.stream).unwrap()).unwrap()
        }
    };
    assert!(!answer.contains(VALUE_MARKER), "{answer}");
    let big = VALUE_MARKER.repeat(5_000);
    let answer = conn.store(&s, "big", big.as_bytes());
    assert!(!format!("{answer:?}").contains(VALUE_MARKER));
    assert!(matches!(conn.lock(), Response::Locked));
    let wrong = conn.call(&Request::Unlock {
        passphrase: Passphrase::new(&format!("{PASS_MARKER} wrong")),
    });
    assert!(!format!("{wrong:?}").contains(PASS_MARKER));
    std::thread::sleep(std::time::Duration::from_millis(150));
    let unlock = conn.call(&Request::Unlock {
        passphrase: Passphrase::new(&passphrase),
    });
    assert!(matches!(unlock, Response::Unlocked));
    let changed = conn.call(&Request::ChangePassphrase {
        old: Passphrase::new(&format!("{PASS_MARKER} not the old one")),
        new: Passphrase::new(&format!("{PASS_MARKER} new")),
    });
    assert!(!format!("{changed:?}").contains(PASS_MARKER));

    for file in files_under(&agent.vault) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, VALUE_MARKER),
            "value in clear in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, PASS_MARKER),
            "passphrase in clear in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, &base64_of(VALUE_MARKER.as_bytes())),
            "a value's base64 in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, NAME_MARKER),
            "secret names are encrypted too ({})",
            file.display()
        );
    }
    // Stop the agent so the audit writer flushes, then read what it wrote.
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    let mut agent = agent;
    assert_eq!(agent.wait_exit(std::time::Duration::from_secs(10)), Some(0));
    let logs = agent.logs();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "the log really is verbose"
    );
    assert!(!logs.contains(VALUE_MARKER), "value in the log");
    let encoded = base64_of(VALUE_MARKER.as_bytes());
    assert!(!logs.contains(&encoded), "base64 of a value in the log");
    assert!(!logs.contains(PASS_MARKER), "passphrase in the log");
    let audit = std::fs::read_to_string(&agent.audit_log).unwrap();
    assert!(
        audit.lines().count() >= 10,
        "decisions are audited:\n{audit}"
    );
    assert!(audit.contains("\"RETRIEVE\""), "{audit}");
    assert!(!audit.contains(VALUE_MARKER), "value in the audit log");
    assert!(
        !audit.contains(&encoded),
        "base64 of a value in the audit log"
    );
    assert!(!audit.contains(PASS_MARKER), "passphrase in the audit log");
}
