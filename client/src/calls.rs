//! Each typed call as data: the request to send and how to pick its typed result out of
//! the answer. The blocking and the async client share these, so both speak exactly the
//! same protocol and neither hands a raw [`Response`] to its caller.

use crate::error::{Error, Result};
use crate::session::Session;
use avp_protocol::frame::{self, FrameBuf};
use avp_protocol::{
    Cursor, DeleteResult, DiscoverInfo, ExpiryChange, HistoryResult, Labels, Limits, ListPage,
    PROTOCOL_VERSION, Passphrase, Request, Response, RotateResult, Secret, SecretName, SecretValue,
    StatusInfo, StoreResult, WorkspaceId, WorkspacesResult,
};

/// The `agent_id` the library reports to the agent's audit log unless told otherwise.
pub const DEFAULT_AGENT_ID: &str = concat!("avp-client/", env!("CARGO_PKG_VERSION"));

/// Optional parts of a STORE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// `None` keeps the secret's existing labels; `Some(Labels::empty())` clears them.
    pub labels: Option<Labels>,
    /// `Keep` (the default) keeps the existing expiry (none for a new secret), `Set` a
    /// future time, `Clear` removes it.
    pub expires_at: ExpiryChange,
}

/// A request and the function that extracts its typed result from the answer (`None` when
/// the answer is not the expected kind).
#[derive(Debug)]
pub(crate) struct Call<T> {
    pub(crate) request: Request,
    pick: fn(Response) -> Option<T>,
}

impl<T> Call<T> {
    fn new(request: Request, pick: fn(Response) -> Option<T>) -> Self {
        Self { request, pick }
    }

    /// The typed result, the agent's refusal as an [`Error`], or an unexpected-response
    /// error naming both kinds.
    pub(crate) fn finish(self, response: Response) -> Result<T> {
        if let Response::Error(error) = response {
            return Err(Error::from_response(error));
        }
        let got = response.kind();
        (self.pick)(response).ok_or(Error::UnexpectedResponse {
            expected: self.request.operation(),
            got,
        })
    }
}

/// Accepts the agent's `Hello` only if it speaks our protocol version. (An agent that
/// refuses ours answers `VERSION_MISMATCH`, which [`Error::from_response`] turns into
/// [`Error::VersionMismatch`].)
pub(crate) fn check_version(agent: u32) -> Result<u32> {
    if agent == PROTOCOL_VERSION {
        Ok(agent)
    } else {
        Err(Error::VersionMismatch {
            client: PROTOCOL_VERSION,
            agent: Some(agent),
        })
    }
}

/// `Some(())` for the one unit answer `is` accepts.
fn unit(response: Response, is: fn(&Response) -> bool) -> Option<()> {
    is(&response).then_some(())
}

/// Rejects a value the agent would refuse anyway, before it is sent.
fn check_value(value: &SecretValue) -> Result<()> {
    let max = Limits::AVP.max_secret_value_length as usize;
    if value.len() > max {
        return Err(Error::ValueTooLarge {
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// The greeting; its result still has to pass [`check_version`].
pub(crate) fn hello() -> Call<u32> {
    let request = Request::Hello {
        version: PROTOCOL_VERSION,
    };
    Call::new(request, |r| match r {
        Response::Hello { version } => Some(version),
        _ => None,
    })
}

pub(crate) fn discover() -> Call<DiscoverInfo> {
    Call::new(Request::Discover, |r| match r {
        Response::Discover(info) => Some(info),
        _ => None,
    })
}

/// How long a client waits for the answer to an AUTHENTICATE that waits for an unlock:
/// longer than the agent's longest pinentry wait (PROTOCOL.md §9.1), so the agent's
/// `VAULT_LOCKED` arrives before the client gives up.
pub const UNLOCK_WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

pub(crate) fn authenticate(
    workspace: &WorkspaceId,
    agent_id: &str,
    ttl_seconds: Option<u64>,
    wait_for_unlock: bool,
) -> Call<Session> {
    let request = Request::Authenticate {
        workspace: workspace.clone(),
        agent_id: agent_id.to_owned(),
        ttl_seconds,
        wait_for_unlock,
    };
    Call::new(request, |r| match r {
        Response::Authenticated(info) => Some(Session::from_info(info)),
        _ => None,
    })
}

pub(crate) fn terminate(session: &Session) -> Call<()> {
    let request = Request::Terminate {
        session: session.id().clone(),
    };
    Call::new(request, |r| unit(r, |r| matches!(r, Response::Terminated)))
}

pub(crate) fn store(
    session: &Session,
    name: &SecretName,
    value: SecretValue,
    options: StoreOptions,
) -> Result<Call<StoreResult>> {
    check_value(&value)?;
    let request = Request::Store {
        session: session.id().clone(),
        name: name.clone(),
        value,
        labels: options.labels,
        expires_at: options.expires_at,
    };
    Ok(Call::new(request, |r| match r {
        Response::Stored(result) => Some(result),
        _ => None,
    }))
}

pub(crate) fn retrieve(session: &Session, name: &SecretName, version: Option<u32>) -> Call<Secret> {
    let request = Request::Retrieve {
        session: session.id().clone(),
        name: name.clone(),
        version,
    };
    Call::new(request, |r| match r {
        Response::Retrieved(secret) => Some(secret),
        _ => None,
    })
}

/// RETRIEVE in this connection's session (PROTOCOL.md §6.17), for a pipelined read.
pub(crate) fn retrieve_in_connection_session(
    name: &SecretName,
    version: Option<u32>,
) -> Call<Secret> {
    let request = Request::RetrieveInConnectionSession {
        name: name.clone(),
        version,
    };
    Call::new(request, |r| match r {
        Response::Retrieved(secret) => Some(secret),
        _ => None,
    })
}

/// TERMINATE of this connection's session (PROTOCOL.md §6.18).
pub(crate) fn terminate_connection_session() -> Call<()> {
    Call::new(Request::TerminateConnectionSession, |r| {
        unit(r, |r| matches!(r, Response::Terminated))
    })
}

/// `Hello` and then `requests` as one buffer of frames, for one write (PROTOCOL.md §3.5:
/// the agent answers them in order). Returns the `Hello` call, whose answer comes first.
pub(crate) fn pipelined(requests: &[&Request]) -> Result<(Call<u32>, FrameBuf)> {
    let hello = hello();
    let mut bytes = frame::encode(&hello.request).map_err(Error::Protocol)?;
    for request in requests {
        bytes.extend_from_slice(&frame::encode(*request).map_err(Error::Protocol)?);
    }
    Ok((hello, bytes))
}

/// The lifetime a one-shot read asks for its session: it is ended at once; the short
/// lifetime only bounds a session whose end is lost.
const ONE_SHOT_TTL_SECONDS: u64 = 60;

/// A read in a session of its own, in one round trip (`Client::retrieve_once` and
/// `AsyncClient::retrieve_once`): AUTHENTICATE, RETRIEVE_IN_CONNECTION_SESSION and
/// TERMINATE_CONNECTION_SESSION, sent after `Hello` in one write (PROTOCOL.md §6.17).
#[derive(Debug)]
pub(crate) struct RetrieveOnce {
    authenticate: Call<Session>,
    retrieve: Call<Secret>,
    terminate: Call<()>,
}

impl RetrieveOnce {
    pub(crate) fn new(
        workspace: &WorkspaceId,
        agent_id: &str,
        name: &SecretName,
        version: Option<u32>,
    ) -> Self {
        Self {
            authenticate: authenticate(workspace, agent_id, Some(ONE_SHOT_TTL_SECONDS), false),
            retrieve: retrieve_in_connection_session(name, version),
            terminate: terminate_connection_session(),
        }
    }

    /// The requests to send after `Hello`, in order; each gets one answer.
    pub(crate) fn requests(&self) -> [&Request; 3] {
        [
            &self.authenticate.request,
            &self.retrieve.request,
            &self.terminate.request,
        ]
    }

    /// The secret, from the answers to AUTHENTICATE and RETRIEVE (the caller reads the
    /// TERMINATE answer too, so the session is over before it returns, and ignores it: a
    /// session whose end failed expires on its own). The first refusal is the error: a
    /// refused AUTHENTICATE (e.g. `VAULT_LOCKED`) rather than the `SESSION_NOT_FOUND` the
    /// read then gets.
    pub(crate) fn finish(
        self,
        authenticated: Result<Response>,
        retrieved: Result<Response>,
    ) -> Result<Secret> {
        let Self {
            authenticate,
            retrieve,
            terminate: _,
        } = self;
        let session = authenticated.and_then(|r| authenticate.finish(r));
        let secret = retrieved.and_then(|r| retrieve.finish(r));
        session?;
        secret
    }
}

pub(crate) fn delete(session: &Session, name: &SecretName) -> Call<DeleteResult> {
    let request = Request::Delete {
        session: session.id().clone(),
        name: name.clone(),
    };
    Call::new(request, |r| match r {
        Response::Deleted(result) => Some(result),
        _ => None,
    })
}

pub(crate) fn list(
    session: &Session,
    label_filter: &Labels,
    cursor: Option<Cursor>,
    limit: Option<u32>,
) -> Call<ListPage> {
    let request = Request::List {
        session: session.id().clone(),
        label_filter: label_filter.clone(),
        cursor,
        limit,
    };
    Call::new(request, |r| match r {
        Response::Listed(page) => Some(page),
        _ => None,
    })
}

/// The page size `list_all` asks for: the largest the protocol allows.
pub(crate) const LIST_ALL_PAGE: u32 = Limits::AVP.max_list_limit;

/// Checks that a page of a full listing moves forward, so a broken agent that keeps
/// answering with the same cursor cannot make `list_all` loop for ever.
pub(crate) fn next_cursor(sent: Option<&Cursor>, page: &ListPage) -> Result<Option<Cursor>> {
    match &page.next_cursor {
        Some(next) if page.secrets.is_empty() || Some(next) == sent => {
            Err(Error::UnexpectedResponse {
                expected: "LIST",
                got: "a page that does not advance",
            })
        }
        next => Ok(next.clone()),
    }
}

pub(crate) fn rotate(
    session: &Session,
    name: &SecretName,
    value: SecretValue,
) -> Result<Call<RotateResult>> {
    check_value(&value)?;
    let request = Request::Rotate {
        session: session.id().clone(),
        name: name.clone(),
        value,
    };
    Ok(Call::new(request, |r| match r {
        Response::Rotated(result) => Some(result),
        _ => None,
    }))
}

pub(crate) fn history(session: &Session, name: &SecretName) -> Call<HistoryResult> {
    let request = Request::History {
        session: session.id().clone(),
        name: name.clone(),
    };
    Call::new(request, |r| match r {
        Response::History(result) => Some(result),
        _ => None,
    })
}

pub(crate) fn init(passphrase: Passphrase, work_factor: Option<u8>) -> Call<()> {
    let request = Request::Init {
        passphrase,
        work_factor,
    };
    Call::new(request, |r| unit(r, |r| matches!(r, Response::Initialized)))
}

pub(crate) fn unlock(passphrase: Passphrase) -> Call<()> {
    Call::new(Request::Unlock { passphrase }, |r| {
        unit(r, |r| matches!(r, Response::Unlocked))
    })
}

pub(crate) fn lock() -> Call<()> {
    Call::new(Request::Lock, |r| {
        unit(r, |r| matches!(r, Response::Locked))
    })
}

pub(crate) fn status() -> Call<StatusInfo> {
    Call::new(Request::Status, |r| match r {
        Response::Status(info) => Some(info),
        _ => None,
    })
}

pub(crate) fn workspaces() -> Call<WorkspacesResult> {
    Call::new(Request::Workspaces, |r| match r {
        Response::Workspaces(result) => Some(result),
        _ => None,
    })
}

pub(crate) fn change_passphrase(old: Passphrase, new: Passphrase) -> Call<()> {
    Call::new(Request::ChangePassphrase { old, new }, |r| {
        unit(r, |r| matches!(r, Response::PassphraseChanged))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use avp_protocol::{ErrorCode, ErrorResponse};

    #[test]
    fn hello_accepts_only_our_version() {
        let version = hello()
            .finish(Response::Hello {
                version: PROTOCOL_VERSION,
            })
            .unwrap();
        assert_eq!(check_version(version).unwrap(), PROTOCOL_VERSION);
        let err = check_version(PROTOCOL_VERSION + 1).unwrap_err();
        assert!(matches!(
            err,
            Error::VersionMismatch { client: PROTOCOL_VERSION, agent: Some(v) } if v == PROTOCOL_VERSION + 1
        ));
        let refusal = ErrorResponse::new(
            ErrorCode::VersionMismatch,
            format!("client speaks {PROTOCOL_VERSION}, agent speaks 9"),
        );
        let err = hello().finish(Response::Error(refusal)).unwrap_err();
        assert!(
            matches!(err, Error::VersionMismatch { agent: Some(9), .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_wrong_answer_names_both_kinds() {
        let err = lock().finish(Response::Unlocked).unwrap_err();
        assert!(matches!(
            err,
            Error::UnexpectedResponse {
                expected: "LOCK",
                got: "Unlocked"
            }
        ));
    }

    #[test]
    fn error_answers_become_typed_errors() {
        let locked = ErrorResponse::new(ErrorCode::VaultLocked, "locked");
        assert!(matches!(
            status().finish(Response::Error(locked)),
            Err(Error::VaultLocked)
        ));
    }

    #[test]
    fn oversized_values_are_refused_before_sending() {
        let session = Session::for_tests();
        let name = SecretName::new("BIG").unwrap();
        let max = Limits::AVP.max_secret_value_length as usize;
        let ok = SecretValue::from_slice(&vec![b'x'; max]);
        assert!(store(&session, &name, ok, StoreOptions::default()).is_ok());
        let big = SecretValue::from_slice(&vec![b'x'; max + 1]);
        let err = rotate(&session, &name, big).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::ValueTooLarge));
    }

    #[test]
    fn a_listing_must_advance() {
        let cursor = Cursor::from_wire("c1.41");
        let stuck = ListPage {
            secrets: Vec::new(),
            next_cursor: Some(cursor.clone()),
        };
        assert!(next_cursor(None, &stuck).is_err());
        let last = ListPage {
            secrets: Vec::new(),
            next_cursor: None,
        };
        assert_eq!(next_cursor(Some(&cursor), &last).unwrap(), None);
    }
}
