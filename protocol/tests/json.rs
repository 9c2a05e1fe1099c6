//! The JSON-lines encoding (PROTOCOL.md §12) under random input: every request survives
//! encode → decode unchanged; arbitrary bytes and JSON-shaped token soup never make the
//! decoder panic; every response is one line of JSON with its `ok` flag.

mod common;

use avp_protocol::json::{decode_request, encode_response, request::encode_request};
use avp_protocol::{ExpiryChange, Request, Timestamp};
use proptest::collection::vec;
use proptest::prelude::*;

/// The instants RFC 3339 can write (years 0000 to 9999); others are clamped (§12.5.5).
fn writable(time: Timestamp) -> bool {
    (-62_167_219_200..=253_402_300_799).contains(&time.unix())
}

fn round_trips(request: &Request) {
    let line = encode_request(request);
    assert_eq!(line.last(), Some(&b'\n'));
    assert!(!line[..line.len() - 1].contains(&b'\n'), "one line");
    let decoded = decode_request(&line[..line.len() - 1]).expect("an encoded request decodes");
    assert_eq!(&decoded, request);
}

#[test]
fn every_example_request_round_trips() {
    for request in common::every_request() {
        round_trips(&request);
    }
}

#[test]
fn every_example_response_is_one_json_line() {
    for response in common::every_response() {
        let line = encode_response(&response);
        assert_eq!(line.last(), Some(&b'\n'));
        assert!(!line[..line.len() - 1].contains(&b'\n'), "one line");
        let value: serde_json::Value = serde_json::from_slice(&line).expect("JSON");
        let ok = matches!(response, avp_protocol::Response::Error(_));
        assert_eq!(value["ok"], serde_json::Value::Bool(!ok), "{value}");
    }
}

/// Pieces of request lines: structure, every op and field name, and values of each type.
fn token() -> impl Strategy<Value = String> {
    let fixed: Vec<&'static str> = vec![
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"op\"",
        "\"session_id\"",
        "\"name\"",
        "\"value\"",
        "\"labels\"",
        "\"expires_at\"",
        "\"version\"",
        "\"label_filter\"",
        "\"cursor\"",
        "\"limit\"",
        "\"ttl_seconds\"",
        "\"workspace\"",
        "\"agent_id\"",
        "\"passphrase\"",
        "\"old_passphrase\"",
        "\"new_passphrase\"",
        "\"work_factor\"",
        "\"wait_for_unlock\"",
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1.5",
        "1e3",
        "4294967296",
        "18446744073709551616",
        "\"aHVudGVyMg==\"",
        "\"a\\\"b\"",
        "\"\\ud800\"",
        "\"2030-03-17T17:46:40Z\"",
        "\"db.password\"",
        "\"default\"",
        "\"c1.6170695f6b6579\"",
        "\"\"",
        " ",
        "\r",
        "\"avp_sess_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
    ];
    let ops = avp_protocol::json::request::OPS.map(|op| format!("\"{op}\""));
    prop_oneof![
        4 => proptest::sample::select(fixed).prop_map(str::to_owned),
        2 => proptest::sample::select(ops.to_vec()),
        1 => "\"[ -~]{0,12}\"",
        1 => any::<i64>().prop_map(|n| n.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_request_round_trips(request in common::request()) {
        if let Request::Store { expires_at: ExpiryChange::Set(at), .. } = &request {
            prop_assume!(writable(*at));
        }
        round_trips(&request);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = decode_request(&bytes);
        let mut object = b"{".to_vec();
        object.extend_from_slice(&bytes);
        let _ = decode_request(&object);
    }

    /// Token soup that is often valid JSON and sometimes a whole request: never a panic,
    /// and whatever decodes re-encodes to the same request.
    #[test]
    fn json_shaped_lines_never_panic(tokens in vec(token(), 0..40)) {
        let line = format!("{{\"op\":{}", tokens.concat());
        for candidate in [line.clone(), format!("{line}}}"), tokens.concat()] {
            match decode_request(candidate.as_bytes()) {
                Ok(request) => {
                    if let Request::Store { expires_at: ExpiryChange::Set(at), .. } = &request {
                        prop_assume!(writable(*at));
                    }
                    round_trips(&request);
                }
                Err(err) => prop_assert!(!err.message().is_empty()),
            }
        }
    }
}
