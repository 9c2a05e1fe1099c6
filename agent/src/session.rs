//! The session table (PROTOCOL.md §9.1). A session is a bearer id bound to one workspace and to
//! the uid of the peer that opened it, with a TTL counted on `CLOCK_BOOTTIME`.
//!
//! Ended sessions are remembered so a caller learns *why* its id stopped working:
//! terminated ones answer `SESSION_TERMINATED` for as long as they would have lived, expired
//! ones answer `SESSION_EXPIRED` for [`EXPIRED_MEMORY`] more. The table is bounded: when full,
//! remembered dead sessions go first, then the live session that expires soonest.
//!
//! Eviction is indexed: two ordered maps keyed by expiry hold the ended and the running
//! sessions, so making room costs O(log n). A scan of the whole table per AUTHENTICATE would
//! let any client of the user make every session check wait behind 10,000-entry scans just
//! by opening sessions it never uses (the reliability suite measured that: the first 10,000
//! sessions in 3 s, the next 20,000 in 50 s).

use crate::timer::BootInstant;
use avp_protocol::{ErrorCode, Limits, SessionId, SessionInfo, Timestamp, WorkspaceId};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// How long an expired session is remembered as expired rather than unknown.
pub const EXPIRED_MEMORY: Duration = Duration::from_secs(3_600);

/// Default bound on remembered sessions, live and ended.
pub const DEFAULT_CAPACITY: usize = 10_000;

#[derive(Debug, Clone)]
struct Entry {
    /// `None` once terminated: an ended session grants nothing, so the workspace id (a name
    /// the user chose) is not kept in ordinary memory past TERMINATE or LOCK.
    workspace: Option<WorkspaceId>,
    uid: u32,
    expires: BootInstant,
    terminated: bool,
    /// Order of opening: with `expires`, the entry's key in the eviction indexes.
    seq: u64,
}

impl Entry {
    fn live(&self, now: BootInstant) -> bool {
        !self.terminated && now < self.expires
    }

    /// After this, the entry can be forgotten.
    fn forget_after(&self) -> BootInstant {
        forget_after(self.expires, self.terminated)
    }

    /// Its key in [`SessionTable::ended`] or [`SessionTable::running`].
    fn key(&self) -> IndexKey {
        (self.expires, self.seq)
    }
}

/// Expiry, then order of opening.
type IndexKey = (BootInstant, u64);

/// When an entry can be forgotten: a terminated one once it would have expired, an
/// expired one [`EXPIRED_MEMORY`] later.
fn forget_after(expires: BootInstant, terminated: bool) -> BootInstant {
    if terminated {
        expires
    } else {
        expires.plus(EXPIRED_MEMORY)
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
    /// Terminated sessions (dead), by expiry. Every entry is in exactly one index.
    ended: BTreeMap<IndexKey, SessionId>,
    /// Sessions not terminated (live, or expired and remembered as such), by expiry.
    running: BTreeMap<IndexKey, SessionId>,
    next_seq: u64,
    capacity: usize,
    limits: Limits,
}

impl SessionTable {
    /// An empty table holding at most `capacity` sessions (live and remembered).
    pub fn new(capacity: usize, limits: Limits) -> Self {
        Self {
            entries: HashMap::new(),
            ended: BTreeMap::new(),
            running: BTreeMap::new(),
            next_seq: 0,
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
        let entry = Entry {
            workspace: Some(workspace.clone()),
            uid,
            expires: now.plus(Duration::from_secs(ttl)),
            terminated: false,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.running.insert(entry.key(), id.clone());
        self.entries.insert(id.clone(), entry);
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
        // Forget what no longer needs remembering: the front of each index.
        self.forget_while(|(expires, _)| forget_after(expires, true) <= now, true);
        self.forget_while(|(expires, _)| forget_after(expires, false) <= now, false);
        while self.entries.len() >= self.capacity {
            // Dead entries first (terminated, or expired), soonest expiry first; then the
            // live one that would expire soonest.
            let ended = self.ended.first_key_value().map(|(key, _)| *key);
            let running = self.running.first_key_value().map(|(key, _)| *key);
            let from_ended = match (ended, running) {
                (Some(e), Some(r)) => r.0 > now || e <= r,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            self.evict_first(from_ended);
        }
    }

    /// Evicts the first entries of one index while `forgettable` holds for them.
    fn forget_while(&mut self, forgettable: impl Fn(IndexKey) -> bool, ended: bool) {
        loop {
            let index = if ended { &self.ended } else { &self.running };
            match index.first_key_value() {
                Some((key, _)) if forgettable(*key) => self.evict_first(ended),
                _ => return,
            }
        }
    }

    fn evict_first(&mut self, ended: bool) {
        let index = if ended {
            &mut self.ended
        } else {
            &mut self.running
        };
        if let Some((_, id)) = index.pop_first() {
            self.entries.remove(&id);
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
            workspace: entry.workspace.clone().ok_or(SessionError::Terminated)?,
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
            entry.workspace = None;
            if let Some(id) = self.running.remove(&entry.key()) {
                self.ended.insert(entry.key(), id);
            }
        }
        Ok(())
    }

    /// Ends every session (the vault was locked).
    pub fn terminate_all(&mut self) {
        for entry in self.entries.values_mut() {
            entry.terminated = true;
            entry.workspace = None;
        }
        self.ended.append(&mut self.running);
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
        // Remembered to say why, but without the workspace id they were bound to.
        assert!(t.entries.values().all(|e| e.workspace.is_none()));
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

    #[test]
    fn dead_sessions_are_evicted_before_live_ones() {
        let mut t = SessionTable::new(3, Limits::AVP);
        let open = |t: &mut SessionTable, ttl| {
            t.open(ws("w"), 1, Some(ttl), at(0), Timestamp::from_unix(0))
                .unwrap()
                .session
        };
        let soon = open(&mut t, 50);
        let ended = open(&mut t, 500);
        let expired = open(&mut t, 10);
        t.terminate(&ended, 1, at(1)).unwrap();
        // At 20 s: `expired` (dead, expiry 10) goes before `ended` (dead, expiry 500), and
        // both before `soon` (live).
        t.open(ws("w"), 1, None, at(20), Timestamp::from_unix(0))
            .unwrap();
        assert_eq!(t.check(&expired, 1, at(20)), Err(SessionError::NotFound));
        assert_eq!(t.check(&ended, 1, at(20)), Err(SessionError::Terminated));
        t.open(ws("w"), 1, None, at(20), Timestamp::from_unix(0))
            .unwrap();
        assert_eq!(t.check(&ended, 1, at(20)), Err(SessionError::NotFound));
        assert!(t.check(&soon, 1, at(20)).is_ok());
        t.terminate_all();
        let fresh = t
            .open(ws("w"), 1, None, at(30), Timestamp::from_unix(0))
            .unwrap();
        assert_eq!(t.len(), 3);
        assert!(t.check(&fresh.session, 1, at(30)).is_ok());
    }

    #[test]
    fn opening_sessions_at_capacity_stays_cheap() {
        let mut t = SessionTable::new(2_000, Limits::AVP);
        let started = std::time::Instant::now();
        for i in 0..40_000u64 {
            t.open(
                ws("w"),
                1,
                Some(100 + i % 7),
                at(i / 100),
                Timestamp::from_unix(0),
            )
            .unwrap();
        }
        assert_eq!(t.len(), 2_000);
        assert_eq!(t.ended.len() + t.running.len(), t.entries.len());
        // A scan per open would be 40,000 × 2,000 entry visits: seconds, even optimised.
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
    }
}
