//! Typed shorthands over [`Conn`](crate::Conn) for the wire-level tests: one call per AVP
//! operation, answering the raw [`Response`] so tests can assert on errors too.

use crate::Conn;
use avp_protocol::{
    Cursor, ErrorCode, ExpiryChange, Labels, Request, Response, SecretName, SecretValue, SessionId,
    WorkspaceId,
};
use std::collections::BTreeMap;

/// A valid secret name (panics on an invalid one: tests build invalid ones on purpose
/// through raw frames instead).
pub fn name(n: &str) -> SecretName {
    SecretName::new(n).expect("valid test name")
}

/// A STORE request, for tests that send it as they like (pipelined, raw).
pub fn store_request(
    session: &SessionId,
    n: &str,
    value: &[u8],
    labels: Option<Labels>,
    expires_at: ExpiryChange,
) -> Request {
    Request::Store {
        session: session.clone(),
        name: name(n),
        value: SecretValue::from_slice(value),
        labels,
        expires_at,
    }
}

/// A valid workspace id.
pub fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::new(id).expect("valid test workspace")
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Labels::new(map).expect("valid test labels")
}

impl Conn {
    /// AUTHENTICATE with a TTL.
    pub fn authenticate(&mut self, workspace: &str, ttl_seconds: Option<u64>) -> Response {
        self.call(&Request::Authenticate {
            workspace: ws(workspace),
            agent_id: "avp-tests".into(),
            ttl_seconds,
            wait_for_unlock: false,
        })
    }

    /// STORE with labels and expiry.
    pub fn store_full(
        &mut self,
        session: &SessionId,
        n: &str,
        value: &[u8],
        labels: Option<Labels>,
        expires_at: ExpiryChange,
    ) -> Response {
        self.call(&store_request(session, n, value, labels, expires_at))
    }

    /// STORE keeping labels and expiry.
    pub fn store(&mut self, session: &SessionId, n: &str, value: &[u8]) -> Response {
        self.store_full(session, n, value, None, ExpiryChange::Keep)
    }

    /// RETRIEVE a version (or the current one).
    pub fn retrieve(&mut self, session: &SessionId, n: &str, version: Option<u32>) -> Response {
        self.call(&Request::Retrieve {
            session: session.clone(),
            name: name(n),
            version,
        })
    }

    /// The current value's bytes, or the error code.
    pub fn value(&mut self, session: &SessionId, n: &str) -> Result<Vec<u8>, ErrorCode> {
        match self.retrieve(session, n, None) {
            Response::Retrieved(secret) => Ok(secret.value.expose_secret().to_vec()),
            Response::Error(e) => Err(e.code),
            other => panic!("retrieve: unexpected {other:?}"),
        }
    }

    /// DELETE.
    pub fn delete(&mut self, session: &SessionId, n: &str) -> Response {
        self.call(&Request::Delete {
            session: session.clone(),
            name: name(n),
        })
    }

    /// One LIST page.
    pub fn list(
        &mut self,
        session: &SessionId,
        label_filter: Labels,
        cursor: Option<Cursor>,
        limit: Option<u32>,
    ) -> Response {
        self.call(&Request::List {
            session: session.clone(),
            label_filter,
            cursor,
            limit,
        })
    }

    /// Every name in the workspace, across pages.
    pub fn names(&mut self, session: &SessionId) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            match self.list(session, Labels::empty(), cursor, Some(1000)) {
                Response::Listed(page) => {
                    out.extend(page.secrets.iter().map(|m| m.name.as_str().to_owned()));
                    match page.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => return out,
                    }
                }
                other => panic!("list: unexpected {other:?}"),
            }
        }
    }

    /// ROTATE.
    pub fn rotate(&mut self, session: &SessionId, n: &str, value: &[u8]) -> Response {
        self.call(&Request::Rotate {
            session: session.clone(),
            name: name(n),
            value: SecretValue::from_slice(value),
        })
    }

    /// HISTORY.
    pub fn history(&mut self, session: &SessionId, n: &str) -> Response {
        self.call(&Request::History {
            session: session.clone(),
            name: name(n),
        })
    }

    /// TERMINATE.
    pub fn terminate(&mut self, session: &SessionId) -> Response {
        self.call(&Request::Terminate {
            session: session.clone(),
        })
    }

    /// STATUS.
    pub fn status(&mut self) -> avp_protocol::StatusInfo {
        match self.call(&Request::Status) {
            Response::Status(status) => status,
            other => panic!("status: unexpected {other:?}"),
        }
    }

    /// LOCK.
    pub fn lock(&mut self) -> Response {
        self.call(&Request::Lock)
    }
}

/// The error code of `response`, or `None` if it is not an error.
pub fn code_of(response: &Response) -> Option<ErrorCode> {
    match response {
        Response::Error(e) => Some(e.code),
        _ => None,
    }
}

/// A peer on `socket` (not an agent) for the one-round-trip reads (`avp get`,
/// `retrieve_once`): it reads four frames before it answers anything — a client that waited
/// for an answer before sending its next request would never be answered — then answers
/// them in order as a locked agent does: `Hello`, `VAULT_LOCKED`, `SESSION_NOT_FOUND` twice.
/// Joining the thread gives the four requests (or what went wrong).
pub fn locked_peer_reading_four_frames(
    socket: &std::path::Path,
) -> std::thread::JoinHandle<Result<Vec<Request>, String>> {
    use avp_protocol::{ErrorResponse, PROTOCOL_VERSION, frame};
    let listener = std::os::unix::net::UnixListener::bind(socket).expect("bind the peer");
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        let mut requests = Vec::new();
        for _ in 0..4 {
            match frame::read_message::<Request>(&mut stream) {
                Ok(Some(request)) => requests.push(request),
                other => return Err(format!("after {requests:?}: {other:?}")),
            }
        }
        let refused = |code| Response::Error(ErrorResponse::new(code, "refused"));
        for answer in [
            Response::Hello {
                version: PROTOCOL_VERSION,
            },
            refused(ErrorCode::VaultLocked),
            refused(ErrorCode::SessionNotFound),
            refused(ErrorCode::SessionNotFound),
        ] {
            frame::write_message(&mut stream, &answer).map_err(|e| e.to_string())?;
        }
        Ok(requests)
    })
}
