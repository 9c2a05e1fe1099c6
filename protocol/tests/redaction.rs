//! `Debug` never shows a secret: for every request and response variant that carries a
//! secret value or a passphrase, neither `{:?}` nor `{:#?}` contains the secret — as text,
//! as a byte list or as hex — whether the message was built locally or decoded from a frame.
//! Session ids are bearer tokens, so `Debug` shows no more than their first few digits.

mod common;

use avp_protocol::SessionId;
use avp_protocol::frame;
use std::fmt::Debug;

const MARKER: &str = "MARKER-s3cr3t-Qx7";

/// The forms in which a derived `Debug` could leak the marker's bytes.
fn leaks(debug: &str) -> Option<&'static str> {
    let bytes = MARKER.as_bytes();
    let as_list = format!("{:?}", &bytes[..8]);
    let as_list = as_list.trim_start_matches('[').trim_end_matches(']');
    let as_hex: String = bytes[..8].iter().map(|b| format!("{b:02x}")).collect();
    if debug.contains(&MARKER[..8]) {
        Some("the text")
    } else if debug.contains(as_list) {
        Some("a byte list")
    } else if debug.to_ascii_lowercase().contains(&as_hex) {
        Some("hex")
    } else {
        None
    }
}

/// At most this many characters of a session id's random part may appear in `Debug`.
const SESSION_DIGITS_SHOWN: usize = 4;

fn longest_session_tail(debug: &str) -> usize {
    debug
        .match_indices(SessionId::PREFIX)
        .map(|(at, prefix)| {
            debug[at + prefix.len()..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Checks `message` and its decoded copy; returns whether it carries the marker at all.
#[track_caller]
fn assert_redacted<T>(message: &T, kind: &str) -> bool
where
    T: serde::Serialize + serde::de::DeserializeOwned + Debug,
{
    let frame = frame::encode(message).unwrap();
    let carries_marker = frame
        .windows(MARKER.len())
        .any(|window| window == MARKER.as_bytes());
    let (decoded, _) = frame::decode_frame::<T>(&frame).unwrap().unwrap();
    for debug in [
        format!("{message:?}"),
        format!("{message:#?}"),
        format!("{decoded:?}"),
        format!("{decoded:#?}"),
    ] {
        if let Some(form) = leaks(&debug) {
            panic!("Debug of {kind} shows the secret as {form}: {debug}");
        }
        let shown = longest_session_tail(&debug);
        assert!(
            shown <= SESSION_DIGITS_SHOWN,
            "Debug of {kind} shows {shown} digits of a session id: {debug}"
        );
    }
    carries_marker
}

#[test]
fn debug_of_every_request_hides_values_and_passphrases() {
    let mut carriers = Vec::new();
    for request in common::every_request_holding(MARKER.as_bytes()) {
        if assert_redacted(&request, request.operation()) {
            carriers.push(request.operation());
        }
    }
    // The check above is not vacuous: these variants do carry the secret on the wire.
    assert_eq!(
        carriers,
        ["STORE", "ROTATE", "INIT", "UNLOCK", "CHANGE_PASSPHRASE"]
    );
}

#[test]
fn debug_of_every_response_hides_values() {
    let mut carriers = Vec::new();
    for response in common::every_response_holding(MARKER.as_bytes()) {
        if assert_redacted(&response, response.kind()) {
            carriers.push(response.kind());
        }
    }
    assert_eq!(carriers, ["Retrieved"]);
}

#[test]
fn the_leak_detector_detects_leaks() {
    // A derived Debug of the raw bytes, and of the text, are both caught.
    assert_eq!(
        leaks(&format!("{:?}", MARKER.as_bytes())),
        Some("a byte list")
    );
    assert_eq!(leaks(&format!("{MARKER:?}")), Some("the text"));
    let hex: String = MARKER.bytes().map(|b| format!("{b:02X}")).collect();
    assert_eq!(leaks(&hex), Some("hex"));
    let id = SessionId::generate().unwrap();
    assert!(longest_session_tail(id.expose()) > SESSION_DIGITS_SHOWN);
}
