//! The session table (contract §5). A session is a bearer id bound to one workspace and to
//! the uid of the peer that opened it, with a TTL counted on `CLOCK_BOOTTIME`.
//!
//! Ended sessions are remembered so a caller learns *why* its id stopped working:
//! terminated ones answer `SESSION_TERMINATED` for as long as they would have lived, expired
//! ones answer `SESSION_EXPIRED` for [`EXPIRED_MEMORY`] more. The table is bounded: when full,
//! remembered dead sessions go first, then the live session that expires soonest.

use crate::timer::BootInstant;
use avp_protocol::{ErrorCode, Limits, SessionId, SessionInfo, Timestamp, WorkspaceId};
use std::collections::HashMap;
use std::time::Duration;

/// How long an expired session is remembered as expired rather than unknown.
pub const EXPIRED_MEMORY: Duration = Duration::from_secs(3_600);

/// Default bound on remembered sessions, live and ended.
pub const DEFAULT_CAPACITY: usize = 10_000;

#[derive(Debug, Clone)]
struct Entry {
    workspace: WorkspaceId,
    uid: u32,
    expires: BootInstant,
    terminated: bool,
}

impl Entry {
    fn live(&self, now: BootInstant) -> bool {
        !self.terminated && now < self.expires
    }

    /// After this, the entry can be forgotten.
    fn forget_after(&self) -> BootInstant {
        if self.terminated {
            self.expires
        } else {
            self.expires.plus(EXPIRED_MEMORY)
        }
    }
}

/// What a valid session grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The workspace every operation acts on.
    pub workspace: WorkspaceId,
}

/// Why a session id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Never issued, forgotten, or opened by another uid.
    NotFound,
    /// Its TTL ran out.
    Expired,
    /// Ended by TERMINATE or by locking the vault.
    Terminated,
}

impl SessionError {
    /// The wire code.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::SessionNotFound,
            Self::Expired => ErrorCode::SessionExpired,
            Self::Terminated => ErrorCode::SessionTerminated,
        }
    }

    /// What to tell the caller.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotFound => "no such session: authenticate again",
            Self::Expired => "the session has expired: authenticate again",
            Self::Terminated => "the session was terminated: authenticate again",
        }
    }
}

/// The bounded table of sessions.
#[derive(Debug)]
pub struct SessionTable {
    entries: HashMap<SessionId, Entry>,
    capacity: usize,
    limits: Limits,
}

impl SessionTable {
    /// An empty table holding at most `capacity` sessions (live and remembered).
    pub fn new(capacity: usize, limits: Limits) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            limits,
        }
    }

    /// The lifetime granted for a requested TTL: absent or 0 → the default, above the
    /// maximum → the maximum.
    pub fn granted_ttl(&self, requested: Option<u64>) -> u64 {
        match requested {
            None | Some(0) => self.limits.default_session_ttl_seconds,
            Some(ttl) => ttl.min(self.limits.max_session_ttl_seconds),
        }
    }

    /// Opens a session.
    pub fn open(
        &mut self,
        workspace: WorkspaceId,
        uid: u32,
        ttl_seconds: Option<u64>,
        now: BootInstant,
        wall_now: Timestamp,
    ) -> Result<SessionInfo, getrandom::Error> {
        let ttl = self.granted_ttl(ttl_seconds);
        let id = SessionId::generate()?;
        self.make_room(now);
        self.entries.insert(
            id.clone(),
            Entry {
                workspace: workspace.clone(),
                uid,
                expires: now.plus(Duration::from_secs(ttl)),
                terminated: false,
            },
        );
        Ok(SessionInfo {
            session: id,
            workspace,
            expires_at: wall_now.plus_seconds(ttl),
            ttl_seconds: ttl,
        })
    }

    fn make_room(&mut self, now: BootInstant) {
        if self.entries.len() < self.capacity {
            return;
        }
        self.entries.retain(|_, e| now < e.forget_after());
        while self.entries.len() >= self.capacity {
            // Dead entries first, then the live one that would expire soonest.
            let victim = self
                .entries
                .iter()
                .min_by_key(|(_, e)| (e.live(now), e.expires))
                .map(|(id, _)| id.clone());
            match victim {
                Some(id) => self.entries.remove(&id),
                None => break,
            };
        }
    }

    /// Checks a session presented by a peer with `uid`.
    pub fn check(&self, id: &SessionId, uid: u32, now: BootInstant) -> Result<Grant, SessionError> {
        let entry = self.entries.get(id).ok_or(SessionError::NotFound)?;
        if entry.uid != uid || now >= entry.forget_after() {
            return Err(SessionError::NotFound);
        }
        if entry.terminated {
            return Err(if now < entry.expires {
                SessionError::Terminated
            } else {
                SessionError::Expired
            });
        }
        if now >= entry.expires {
            return Err(SessionError::Expired);
        }
        Ok(Grant {
            workspace: entry.workspace.clone(),
        })
    }

    /// Ends a session early (TERMINATE). Terminating an ended session reports why it ended.
    pub fn terminate(
        &mut self,
        id: &SessionId,
        uid: u32,
        now: BootInstant,
    ) -> Result<(), SessionError> {
        self.check(id, uid, now)?;
        if let Some(entry) = self.entries.get_mut(id) {
            entry.terminated = true;
        }
        Ok(())
    }

    /// Ends every session (the vault was locked).
    pub fn terminate_all(&mut self) {
        for entry in self.entries.values_mut() {
            entry.terminated = true;
        }
    }

    /// Sessions that still work.
    pub fn live(&self, now: BootInstant) -> usize {
        self.entries.values().filter(|e| e.live(now)).count()
    }

    /// Sessions remembered, live or ended (bounded by the capacity).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(name: &str) -> WorkspaceId {
        WorkspaceId::new(name).unwrap()
    }

    fn at(seconds: u64) -> BootInstant {
        BootInstant::from_duration(Duration::from_secs(seconds))
    }

    fn table() -> SessionTable {
        SessionTable::new(DEFAULT_CAPACITY, Limits::AVP)
    }

    #[test]
    fn ttl_defaults_and_clamps() {
        let t = table();
        assert_eq!(t.granted_ttl(None), 3_600);
        assert_eq!(t.granted_ttl(Some(0)), 3_600);
        assert_eq!(t.granted_ttl(Some(60)), 60);
        assert_eq!(t.granted_ttl(Some(10_000_000)), 86_400);
    }

    #[test]
    fn a_session_expires_then_is_forgotten() {
        let mut t = table();
        let info = t
            .open(ws("w"), 1000, Some(10), at(100), Timestamp::from_unix(0))
            .unwrap();
        assert_eq!(
            t.check(&info.session, 1000, at(109)).unwrap().workspace,
            ws("w")
        );
        assert_eq!(
            t.check(&info.session, 1000, at(110)),
            Err(SessionError::Expired)
        );
        assert_eq!(
            t.check(&info.session, 1000, at(110 + 3_600)),
            Err(SessionError::NotFound)
        );
    }

    #[test]
    fn a_session_is_bound_to_its_uid() {
        let mut t = table();
        let info = t
            .open(ws("w"), 1000, None, at(0), Timestamp::from_unix(0))
            .unwrap();
        assert_eq!(
            t.check(&info.session, 1001, at(1)),
            Err(SessionError::NotFound)
        );
    }

    #[test]
    fn terminated_sessions_say_so_while_they_would_have_lived() {
        let mut t = table();
        let info = t
            .open(ws("w"), 1, Some(100), at(0), Timestamp::from_unix(0))
            .unwrap();
        t.terminate(&info.session, 1, at(1)).unwrap();
        assert_eq!(
            t.check(&info.session, 1, at(50)),
            Err(SessionError::Terminated)
        );
        assert_eq!(
            t.terminate(&info.session, 1, at(50)),
            Err(SessionError::Terminated)
        );
        assert_eq!(
            t.check(&info.session, 1, at(100)),
            Err(SessionError::NotFound)
        );
        let other = t
            .open(ws("w"), 1, None, at(0), Timestamp::from_unix(0))
            .unwrap();
        t.terminate_all();
        assert_eq!(
            t.check(&other.session, 1, at(1)),
            Err(SessionError::Terminated)
        );
    }

    #[test]
    fn the_table_stays_bounded_and_evicts_the_soonest_to_expire() {
        let mut t = SessionTable::new(3, Limits::AVP);
        let short = t
            .open(ws("w"), 1, Some(5), at(0), Timestamp::from_unix(0))
            .unwrap();
        let long: Vec<_> = (0..5)
            .map(|_| {
                t.open(ws("w"), 1, Some(500), at(0), Timestamp::from_unix(0))
                    .unwrap()
            })
            .collect();
        assert_eq!(t.len(), 3);
        assert_eq!(
            t.check(&short.session, 1, at(1)),
            Err(SessionError::NotFound)
        );
        assert!(t.check(&long[4].session, 1, at(1)).is_ok());
        assert_eq!(t.live(at(1)), 3);
    }
}
