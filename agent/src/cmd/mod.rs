//! One AVP operation per file; this module only dispatches, checks sessions once for every
//! secret operation, and records each decision in the audit log.

mod authenticate;
mod change_passphrase;
mod delete;
mod discover;
mod history;
mod init;
mod list;
mod lock;
mod retrieve;
mod rotate;
mod status;
mod store;
mod terminate;
mod unlock;

use crate::audit::Peer;
use crate::error::{Failure, Outcome};
use crate::state::AgentState;
use crate::storage::Backend;
use crate::timer::BootInstant;
use avp_protocol::{ErrorCode, Request, Response, SecretName, SessionId, WorkspaceId};
use std::sync::Arc;

/// What an operation acted on, for the audit line.
#[derive(Debug, Default)]
pub struct Scope {
    /// The workspace, once the session has named it.
    pub workspace: Option<WorkspaceId>,
    /// The secret, for operations on one.
    pub name: Option<SecretName>,
}

/// A secret operation's context: an open backend and the session's workspace.
pub struct SecretCtx {
    /// The unlocked backend (kept alive for the operation even if the vault locks meanwhile).
    pub backend: Arc<dyn Backend>,
    /// The workspace the session is bound to.
    pub workspace: WorkspaceId,
}

impl std::fmt::Debug for SecretCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCtx")
            .field("backend", &self.backend.name())
            .field("workspace", &self.workspace)
            .finish()
    }
}

impl SecretCtx {
    /// Resolves `session` for `peer`: the vault must be open (`VAULT_LOCKED` first, as a
    /// locked vault has ended every session anyway), then the session must be live and
    /// belong to the peer's uid. Restarts the idle timer.
    fn open(
        state: &AgentState,
        peer: &Peer,
        session: &SessionId,
        scope: &mut Scope,
    ) -> Result<Self, Failure> {
        let backend = state.backend()?;
        let grant = state
            .sessions()
            .check(session, peer.uid, BootInstant::now())
            .map_err(|e| Failure::new(e.code(), e.message()))?;
        state.touch();
        scope.workspace = Some(grant.workspace.clone());
        Ok(Self {
            backend,
            workspace: grant.workspace,
        })
    }
}

/// Answers one request (after `Hello`) and audits the decision.
pub fn dispatch(state: &AgentState, peer: &Peer, request: Request) -> Response {
    let operation = request.operation();
    tracing::trace!(operation, pid = ?peer.pid, "request");
    let mut scope = Scope::default();
    let outcome = run(state, peer, request, &mut scope);
    if let Some(audit) = &state.audit {
        let result = outcome.as_ref().map(|_| ()).map_err(|f| f.code);
        audit.record(
            peer,
            operation,
            scope.workspace.as_ref(),
            scope.name.as_ref(),
            result,
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

fn run(state: &AgentState, peer: &Peer, request: Request, scope: &mut Scope) -> Outcome {
    match request {
        Request::Hello { .. } => Err(Failure::new(
            ErrorCode::ProtocolError,
            "Hello was already exchanged on this connection",
        )),
        Request::Discover => Ok(discover::run(state)),
        Request::Status => Ok(status::run(state)),
        Request::Lock => Ok(lock::run(state)),
        Request::Authenticate {
            workspace,
            agent_id,
            ttl_seconds,
        } => {
            scope.workspace = Some(workspace.clone());
            authenticate::run(state, peer, workspace, &agent_id, ttl_seconds)
        }
        Request::Terminate { session } => terminate::run(state, peer, &session, scope),
        Request::Init {
            passphrase,
            work_factor,
        } => init::run(state, passphrase, work_factor),
        Request::Unlock { passphrase } => unlock::run(state, passphrase),
        Request::ChangePassphrase { old, new } => change_passphrase::run(state, old, new),
        Request::Store {
            session,
            name,
            value,
            labels,
            expires_at,
        } => {
            scope.name = Some(name.clone());
            let ctx = SecretCtx::open(state, peer, &session, scope)?;
            store::run(&ctx, &name, value, labels, expires_at)
        }
        Request::Retrieve {
            session,
            name,
            version,
        } => {
            scope.name = Some(name.clone());
            let ctx = SecretCtx::open(state, peer, &session, scope)?;
            retrieve::run(&ctx, &name, version)
        }
        Request::Delete { session, name } => {
            scope.name = Some(name.clone());
            let ctx = SecretCtx::open(state, peer, &session, scope)?;
            delete::run(&ctx, &name)
        }
        Request::List {
            session,
            label_filter,
            cursor,
            limit,
        } => {
            let ctx = SecretCtx::open(state, peer, &session, scope)?;
            list::run(&ctx, state, &label_filter, cursor, limit)
        }
        Request::Rotate {
            session,
            name,
            value,
        } => {
            scope.name = Some(name.clone());
            let ctx = SecretCtx::open(state, peer, &session, scope)?;
            rotate::run(&ctx, &name, value)
        }
        Request::History { session, name } => {
            scope.name = Some(name.clone());
            let ctx = SecretCtx::open(state, peer, &session, scope)?;
            history::run(&ctx, &name)
        }
    }
}
