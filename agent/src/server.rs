//! The accept loop: peer-credential check on every connection, the connection cap, and a
//! graceful drain at shutdown.
//!
//! The cap. At most `max_connections` clients are served at once. When a new client
//! arrives at the cap, the connection that has been idle (between requests) the longest is
//! closed to make room — an idle client loses nothing but its socket, and a flood of idle
//! connections can never lock out a real request. If no connection is idle (all are in
//! the middle of a frame, each bounded by the frame timeout), the newcomer is refused with
//! `RATE_LIMIT_EXCEEDED`.

use crate::audit::Peer;
use crate::connection::{self, Connection};
use crate::state::{AgentState, guard};
use avp_protocol::{ErrorCode, ErrorResponse, Response, frame};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long connections get to finish their current request at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Tracked {
    /// Since when the connection has been waiting for a request; `None` while busy.
    idle_since: Option<Instant>,
    /// Wakes the connection so it closes.
    evict: Arc<Notify>,
}

/// The live connections, for the cap and for eviction.
#[derive(Debug, Default)]
pub struct Registry {
    connections: Mutex<HashMap<u64, Tracked>>,
    next_id: Mutex<u64>,
}

/// A connection's entry in the [`Registry`]; removed on drop.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    id: u64,
    /// Notified when the server wants this connection gone.
    pub evict: Arc<Notify>,
}

impl Registration {
    /// The connection is waiting for its next request (and may be evicted).
    pub fn set_idle(&self) {
        if let Some(t) = guard(&self.registry.connections).get_mut(&self.id) {
            t.idle_since = Some(Instant::now());
        }
    }

    /// The connection is reading or answering a request.
    pub fn set_busy(&self) {
        if let Some(t) = guard(&self.registry.connections).get_mut(&self.id) {
            t.idle_since = None;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        guard(&self.registry.connections).remove(&self.id);
    }
}

impl Registry {
    /// Live connections.
    pub fn len(&self) -> usize {
        guard(&self.connections).len()
    }

    /// True when no connection is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a new connection if there is room, evicting the longest-idle connection
    /// when at `cap`. `None`: at the cap with nobody idle.
    pub fn admit(self: &Arc<Self>, cap: usize) -> Option<Registration> {
        let mut connections = guard(&self.connections);
        if connections.len() >= cap {
            let oldest_idle = connections
                .iter()
                .filter_map(|(id, t)| t.idle_since.map(|since| (since, *id)))
                .min()?;
            if let Some(victim) = connections.remove(&oldest_idle.1) {
                victim.evict.notify_one();
            }
        }
        let id = {
            let mut next = guard(&self.next_id);
            *next += 1;
            *next
        };
        let evict = Arc::new(Notify::new());
        connections.insert(
            id,
            Tracked {
                idle_since: None,
                evict: Arc::clone(&evict),
            },
        );
        Some(Registration {
            registry: Arc::clone(self),
            id,
            evict,
        })
    }
}

/// Who is calling: uid and pid from `SO_PEERCRED`, the executable from `/proc`.
fn peer_of(stream: &UnixStream) -> Option<Peer> {
    let cred = stream.peer_cred().ok()?;
    let pid = cred.pid();
    let exe = pid.and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok());
    Some(Peer {
        uid: cred.uid(),
        pid,
        exe,
    })
}

/// Answers `response` and closes, for connections that are refused before `Hello`.
async fn refuse(
    state: Arc<AgentState>,
    mut stream: UnixStream,
    peer: Peer,
    code: ErrorCode,
    message: String,
) {
    if let Some(audit) = &state.audit {
        audit.record(&peer, "CONNECT", None, None, Err(code));
    }
    let response = Response::Error(ErrorResponse::new(code, message));
    if let Ok(bytes) = frame::encode(&response) {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&bytes)).await;
    }
    let _ = stream.shutdown().await;
}

/// Serves `listener` until `shutdown` turns true, then drains the connections.
pub async fn run(
    listener: UnixListener,
    state: Arc<AgentState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let registry = Arc::new(Registry::default());
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        // Reap finished connection tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(peer) = peer_of(&stream) else {
            tracing::warn!("cannot read the peer's credentials; closing");
            continue;
        };
        if peer.uid != state.uid {
            tracing::warn!(uid = peer.uid, pid = ?peer.pid, "refused a connection from another user");
            let message = format!("this agent serves uid {} only", state.uid);
            tasks.spawn(refuse(
                Arc::clone(&state),
                stream,
                peer,
                ErrorCode::PermissionDenied,
                message,
            ));
            continue;
        }
        let Some(registration) = registry.admit(state.settings.max_connections) else {
            tracing::warn!("connection cap reached with no idle connection; refusing");
            let message = "the agent is at its connection limit: try again shortly".to_owned();
            tasks.spawn(refuse(
                Arc::clone(&state),
                stream,
                peer,
                ErrorCode::RateLimitExceeded,
                message,
            ));
            continue;
        };
        let conn = Connection {
            state: Arc::clone(&state),
            peer,
            registration,
            shutdown: shutdown.clone(),
        };
        tasks.spawn(connection::serve(stream, conn));
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "connections did not finish in time; closing them"
        );
        tasks.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_longest_idle_connection_is_evicted() {
        let registry = Arc::new(Registry::default());
        let a = registry.admit(2).unwrap();
        let b = registry.admit(2).unwrap();
        a.set_idle();
        tokio::time::sleep(Duration::from_millis(5)).await;
        b.set_idle();
        let c = registry.admit(2).expect("room made");
        assert_eq!(registry.len(), 2);
        // `a` was idle longest: it got the eviction notice.
        tokio::time::timeout(Duration::from_secs(1), a.evict.notified())
            .await
            .expect("a evicted");
        b.set_busy();
        c.set_busy();
        assert!(registry.admit(2).is_none(), "nobody idle: refuse");
        drop(c);
        assert!(registry.admit(2).is_some());
    }
}
