//! The AVP operations. This module dispatches, checks sessions once for every secret
//! operation, and records each decision in the audit log; each file below does the work of
//! its operations: `discover`, `status`, `authenticate`, `terminate`, `passphrase` (INIT,
//! UNLOCK, CHANGE_PASSPHRASE checks in front of the lock state) and `secrets` (the six
//! secret operations, one backend call each, which is why they share a file) and
//! `workspaces` (WORKSPACES, which needs no session). LOCK is one call to the lock state,
//! made here.

mod authenticate;
mod discover;
mod passphrase;
mod secrets;
mod status;
mod terminate;
mod workspaces;

use crate::audit::Peer;
use crate::error::{Failure, Outcome};
use crate::state::AgentState;
use crate::timer::BootInstant;
use avp_protocol::{ErrorCode, LockReason, Request, Response, SecretName, SessionId, WorkspaceId};
use secrets::SecretCtx;

/// What an operation acted on, for the audit line.
#[derive(Debug, Default)]
pub struct Scope {
    /// The workspace, once the session has named it.
    pub workspace: Option<WorkspaceId>,
    /// The secret, for operations on one.
    pub name: Option<SecretName>,
}

/// Resolves `session` for `peer`: the vault must be open (`VAULT_LOCKED` first, as a
/// locked vault has ended every session anyway), then the session must be live and
/// belong to the peer's uid. Restarts the idle timer.
fn open_secret(
    state: &AgentState,
    peer: &Peer,
    session: &SessionId,
    scope: &mut Scope,
) -> Result<SecretCtx, Failure> {
    let backend = state.lock_state.backend()?;
    let grant = state
        .lock_state
        .sessions()
        .check(session, peer.uid, BootInstant::now())
        .map_err(|e| Failure::new(e.code(), e.message()))?;
    state.lock_state.touch();
    scope.workspace = Some(grant.workspace.clone());
    Ok(SecretCtx {
        backend,
        workspace: grant.workspace,
    })
}

/// The session the latest successful AUTHENTICATE on one connection opened, which
/// RETRIEVE_IN_CONNECTION_SESSION and TERMINATE_CONNECTION_SESSION refer to (PROTOCOL.md
/// §6.17): it lets a client pipeline a whole `get` before it knows the session's id. Kept
/// by the connection, never shared with another.
#[derive(Debug, Default)]
pub struct ConnectionSession(Option<SessionId>);

impl ConnectionSession {
    /// The session, or `SESSION_NOT_FOUND` when this connection has none.
    fn get(&self) -> Result<&SessionId, Failure> {
        self.0.as_ref().ok_or_else(|| {
            Failure::new(
                ErrorCode::SessionNotFound,
                "no session was opened on this connection: send Authenticate first",
            )
        })
    }
}

/// Answers one request (after `Hello`) and audits the decision. `bound` is the
/// connection's own session (see [`ConnectionSession`]).
pub fn dispatch(
    state: &AgentState,
    peer: &Peer,
    request: Request,
    bound: &mut ConnectionSession,
) -> Response {
    let operation = request.operation();
    tracing::trace!(operation, pid = ?peer.pid, "request");
    let mut scope = Scope::default();
    // Cleared before, read after: whether the backend answered from last-known state.
    crate::storage::stale::take();
    let outcome = run(state, peer, request, &mut scope, bound);
    let stale = crate::storage::stale::take();
    if let Some(audit) = &state.audit {
        let result = outcome.as_ref().map(|_| ()).map_err(|f| f.code);
        audit.record_read(
            peer,
            operation,
            scope.workspace.as_ref(),
            scope.name.as_ref(),
            result,
            stale,
        );
    }
    match outcome {
        Ok(response) => response,
        Err(failure) => {
            tracing::debug!(operation, code = %failure.code, "refused");
            failure.into_response()
        }
    }
}

fn run(
    state: &AgentState,
    peer: &Peer,
    request: Request,
    scope: &mut Scope,
    bound: &mut ConnectionSession,
) -> Outcome {
    match request {
        Request::Hello { .. } => Err(Failure::new(
            ErrorCode::ProtocolError,
            "Hello was already exchanged on this connection",
        )),
        Request::Discover => Ok(discover::run(state)),
        Request::Status => Ok(status::run(state)),
        Request::Workspaces => workspaces::run(state),
        Request::Lock => {
            // Locking a locked vault is not an error.
            state.lock_state.lock(LockReason::Explicit);
            Ok(Response::Locked)
        }
        Request::Authenticate {
            workspace,
            agent_id,
            ttl_seconds,
            wait_for_unlock,
        } => {
            scope.workspace = Some(workspace.clone());
            if wait_for_unlock {
                state.prompt.wait_for_unlock(&state.lock_state, peer)?;
            }
            let answer = authenticate::run(state, peer, workspace, &agent_id, ttl_seconds)?;
            if let Response::Authenticated(info) = &answer {
                bound.0 = Some(info.session.clone());
            }
            Ok(answer)
        }
        Request::RetrieveInConnectionSession { name, version } => {
            scope.name = Some(name.clone());
            let ctx = open_secret(state, peer, bound.get()?, scope)?;
            secrets::retrieve(&ctx, &name, version)
        }
        Request::TerminateConnectionSession => {
            let answer = terminate::run(state, peer, bound.get()?, scope);
            // Ended (or already dead): either way this connection no longer has one.
            bound.0 = None;
            answer
        }
        Request::Terminate { session } => terminate::run(state, peer, &session, scope),
        Request::Init {
            passphrase,
            work_factor,
        } => passphrase::init(state, &passphrase, work_factor),
        Request::Unlock { passphrase } => passphrase::unlock(state, &passphrase),
        Request::ChangePassphrase { old, new } => passphrase::change(state, &old, &new),
        Request::Store {
            session,
            name,
            value,
            labels,
            expires_at,
        } => {
            scope.name = Some(name.clone());
            let ctx = open_secret(state, peer, &session, scope)?;
            secrets::store(&ctx, &name, value, labels, expires_at)
        }
        Request::Retrieve {
            session,
            name,
            version,
        } => {
            scope.name = Some(name.clone());
            let ctx = open_secret(state, peer, &session, scope)?;
            secrets::retrieve(&ctx, &name, version)
        }
        Request::Delete { session, name } => {
            scope.name = Some(name.clone());
            let ctx = open_secret(state, peer, &session, scope)?;
            secrets::delete(&ctx, &name)
        }
        Request::List {
            session,
            label_filter,
            cursor,
            limit,
        } => {
            let ctx = open_secret(state, peer, &session, scope)?;
            secrets::list(&ctx, state.settings.limits, &label_filter, cursor, limit)
        }
        Request::Rotate {
            session,
            name,
            value,
        } => {
            scope.name = Some(name.clone());
            let ctx = open_secret(state, peer, &session, scope)?;
            secrets::rotate(&ctx, &name, value)
        }
        Request::History { session, name } => {
            scope.name = Some(name.clone());
            let ctx = open_secret(state, peer, &session, scope)?;
            secrets::history(&ctx, &name)
        }
    }
}
