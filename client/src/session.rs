//! [`Session`]: the handle AUTHENTICATE returns, which every secret operation needs.

use avp_protocol::{SessionId, SessionInfo, Timestamp, WorkspaceId};

/// An open session: a bearer id bound to one workspace until it expires. End it early with
/// `Client::terminate`. Its `Debug` shows only a prefix of the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    id: SessionId,
    workspace: WorkspaceId,
    expires_at: Timestamp,
    ttl_seconds: u64,
}

impl Session {
    pub(crate) fn from_info(info: SessionInfo) -> Self {
        Self {
            id: info.session,
            workspace: info.workspace,
            expires_at: info.expires_at,
            ttl_seconds: info.ttl_seconds,
        }
    }

    /// The session id (a bearer token: hand it only to processes of the same user).
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The workspace every operation of this session acts on.
    pub fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    /// When the agent stops honouring this session.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// The lifetime the agent granted, after defaulting and clamping.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    /// True once the expiry has passed by the local clock.
    pub fn is_expired(&self) -> bool {
        Timestamp::now() >= self.expires_at
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self {
            id: SessionId::generate().expect("random session id"),
            workspace: WorkspaceId::default_workspace(),
            expires_at: Timestamp::now().plus_seconds(60),
            ttl_seconds: 60,
        }
    }
}
