//! Requests the typed protocol cannot build: the validated types refuse invalid names,
//! workspaces and labels, so hostile-input tests encode this mirror of `Request` instead.
//! Its variants are in the same order with the same field layout, so it produces the very
//! bytes a client would send (checked by `mirror_encodes_like_the_real_request`).

use crate::Conn;
use avp_protocol::{Response, SessionId, frame};
use serde::Serialize;
use std::collections::BTreeMap;

/// The first variants of `avp_protocol::Request`, with plain field types.
#[derive(Debug, Serialize)]
pub enum RawRequest {
    /// `Hello`.
    Hello {
        /// Protocol version.
        version: u32,
    },
    /// `Discover`.
    Discover,
    /// `Authenticate`.
    Authenticate {
        /// Any string.
        workspace: String,
        /// Any string.
        agent_id: String,
        /// TTL.
        ttl_seconds: Option<u64>,
        /// Wait for an unlock through the agent's pinentry.
        wait_for_unlock: bool,
    },
    /// `Terminate`.
    Terminate {
        /// Any string.
        session: String,
    },
    /// `Store`.
    Store {
        /// Any string.
        session: String,
        /// Any string.
        name: String,
        /// Value bytes (bincode writes `Vec<u8>` exactly like `SecretValue`).
        value: Vec<u8>,
        /// Any labels.
        labels: Option<BTreeMap<String, String>>,
        /// Seconds since the epoch.
        expires_at: Option<i64>,
    },
    /// `Retrieve`.
    Retrieve {
        /// Any string.
        session: String,
        /// Any string.
        name: String,
        /// Version.
        version: Option<u32>,
    },
}

impl RawRequest {
    /// The whole frame.
    pub fn frame(&self) -> Vec<u8> {
        frame::encode(self).expect("encodable").to_vec()
    }
}

/// A STORE with arbitrary labels.
pub fn store_with_labels(
    session: &SessionId,
    name: &str,
    labels: &[(String, String)],
) -> RawRequest {
    RawRequest::Store {
        session: session.expose().to_owned(),
        name: name.to_owned(),
        value: b"v".to_vec(),
        labels: Some(labels.iter().cloned().collect()),
        expires_at: None,
    }
}

impl Conn {
    /// Sends a raw request and reads the response.
    pub fn call_raw(&mut self, request: &RawRequest) -> Response {
        let answer = self.call_raw_bytes(&request.frame());
        frame::decode_frame::<Response>(&answer)
            .expect("a valid response")
            .expect("a whole frame")
            .0
    }

    /// Writes `bytes` as they are and returns the raw bytes of one response frame.
    pub fn call_raw_bytes(&mut self, bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        self.stream.write_all(bytes).expect("write");
        let payload = frame::read_payload(&mut self.stream)
            .expect("a response frame")
            .expect("the agent answered");
        let mut whole = (payload.len() as u32).to_be_bytes().to_vec();
        whole.extend_from_slice(&payload);
        whole
    }

    /// Writes `bytes` and reports what came back: a response, or `None` if the agent
    /// closed the connection without one.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Option<Response> {
        use std::io::Write;
        self.stream.write_all(bytes).ok()?;
        frame::read_message::<Response>(&mut self.stream)
            .ok()
            .flatten()
    }

    /// True once the agent has closed this connection (reads end or fail).
    pub fn is_closed(&mut self) -> bool {
        use std::io::Read;
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avp_protocol::{Request, SecretName, SecretValue};

    #[test]
    fn mirror_encodes_like_the_real_request() {
        let session = SessionId::generate().unwrap();
        let real = Request::Store {
            session: session.clone(),
            name: SecretName::new("k").unwrap(),
            value: SecretValue::from_slice(b"\x00\xffv"),
            labels: None,
            // `Set(t)` is written as `Some(t)` was: the byte 1, then t.
            expires_at: avp_protocol::ExpiryChange::Set(avp_protocol::Timestamp::from_unix(5)),
        };
        let raw = RawRequest::Store {
            session: session.expose().to_owned(),
            name: "k".into(),
            value: b"\x00\xffv".to_vec(),
            labels: None,
            expires_at: Some(5),
        };
        assert_eq!(frame::encode(&real).unwrap().to_vec(), raw.frame());
        // `Keep` is written as `None` was: the byte 0.
        let keep = Request::Store {
            session: session.clone(),
            name: SecretName::new("k").unwrap(),
            value: SecretValue::from_slice(b"v"),
            labels: None,
            expires_at: avp_protocol::ExpiryChange::Keep,
        };
        let none = RawRequest::Store {
            session: session.expose().to_owned(),
            name: "k".into(),
            value: b"v".to_vec(),
            labels: None,
            expires_at: None,
        };
        assert_eq!(frame::encode(&keep).unwrap().to_vec(), none.frame());
        let hello = Request::Hello { version: 9 };
        assert_eq!(
            frame::encode(&hello).unwrap().to_vec(),
            RawRequest::Hello { version: 9 }.frame()
        );
    }
}
