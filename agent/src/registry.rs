//! The live connections: the connection cap, whom to evict at it, and reaching a connection
//! blocked in `read` (see `server` for the rules). Each connection thread holds its
//! [`Registration`] and updates its phase; the server admits, evicts and, at shutdown,
//! stops them reading and waits for the last one to leave.
//!
//! A connection's socket descriptor is only used under the registry's lock, and a
//! connection leaves the registry before it closes its socket (`connection::serve`), so the
//! number can never name another file by then.

use crate::sync::guard;
use nix::sys::socket::{MsgFlags, Shutdown, recv, shutdown};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a connection is doing, for the choice of whom to evict at the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first byte of a request, since then.
    Idle(Instant),
    /// Part of a frame has arrived, the first byte at this instant; the rest is awaited.
    Reading(Instant),
    /// A whole request is being dispatched or answered: never evicted.
    Busy,
}

impl Phase {
    /// The eviction order: lower goes first. Partial frames (oldest first) before idle
    /// connections (longest idle first); busy ones never.
    fn eviction_rank(self) -> Option<(u8, Instant)> {
        match self {
            Phase::Reading(since) => Some((0, since)),
            Phase::Idle(since) => Some((1, since)),
            Phase::Busy => None,
        }
    }
}

/// A connection's [`Phase`] in one atomic word, so the connection thread can change it
/// three times a request without taking the registry's lock (16 busy connections would
/// otherwise queue on it): the top two bits are the kind, the rest the nanoseconds since
/// the registry's epoch.
#[derive(Debug)]
struct PhaseCell(AtomicU64);

const KIND_SHIFT: u32 = 62;
const SINCE_MASK: u64 = (1 << KIND_SHIFT) - 1;
const IDLE: u64 = 0;
const READING: u64 = 1;
const BUSY: u64 = 2;

impl PhaseCell {
    fn new(epoch: Instant) -> Self {
        let cell = Self(AtomicU64::new(0));
        cell.set(IDLE, epoch);
        cell
    }

    fn set(&self, kind: u64, epoch: Instant) {
        let since = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(SINCE_MASK) & SINCE_MASK;
        self.0.store(kind << KIND_SHIFT | since, Ordering::Relaxed);
    }

    fn get(&self, epoch: Instant) -> Phase {
        let word = self.0.load(Ordering::Relaxed);
        let since = epoch + Duration::from_nanos(word & SINCE_MASK);
        match word >> KIND_SHIFT {
            IDLE => Phase::Idle(since),
            READING => Phase::Reading(since),
            _ => Phase::Busy,
        }
    }
}

#[derive(Debug)]
struct Tracked {
    phase: Arc<PhaseCell>,
    /// Its socket's descriptor, to shut it down from here (see the module docs).
    socket: RawFd,
}

/// The live connections, for the cap, eviction and shutdown.
#[derive(Debug)]
pub struct Registry {
    /// The instant phases are measured from.
    epoch: Instant,
    connections: Mutex<HashMap<u64, Tracked>>,
    next_id: Mutex<u64>,
    /// Signalled when the last connection leaves (the shutdown drain waits on it).
    emptied: Condvar,
    /// Set by [`Registry::stop_reading`] under the `connections` lock: no connection is
    /// admitted after it, so none escapes the shutdown.
    stopping: AtomicBool,
}

/// A connection's entry in the [`Registry`]; removed on drop.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    id: u64,
    phase: Arc<PhaseCell>,
}

impl Registration {
    /// The connection is waiting for its next request (and may be evicted).
    pub fn set_idle(&self) {
        self.phase.set(IDLE, self.registry.epoch);
    }

    /// The first bytes of a frame arrived; the rest is awaited (evicted first at the cap).
    pub fn set_reading(&self) {
        self.phase.set(READING, self.registry.epoch);
    }

    /// The connection is dispatching or answering a whole request.
    pub fn set_busy(&self) {
        self.phase.set(BUSY, self.registry.epoch);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut connections = guard(&self.registry.connections);
        connections.remove(&self.id);
        if connections.is_empty() {
            self.registry.emptied.notify_all();
        }
    }
}

/// True when the peer of `socket` has closed its end and nothing is left to read: a
/// non-blocking peek reads end-of-file.
fn peer_hung_up(socket: RawFd) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        recv(
            socket,
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT
        ),
        Ok(0)
    )
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            connections: Mutex::default(),
            next_id: Mutex::default(),
            emptied: Condvar::new(),
            stopping: AtomicBool::new(false),
        }
    }
}

impl Registry {
    /// Live connections.
    #[cfg(test)]
    fn len(&self) -> usize {
        guard(&self.connections).len()
    }

    /// Registers the connection on `socket` if there is room, evicting at `cap` the oldest
    /// partial frame, else the longest-idle connection (see the module docs). `None`: at
    /// the cap with every connection busy, or the agent is stopping
    /// ([`stopping`](Self::stopping)).
    pub fn admit(self: &Arc<Self>, cap: usize, socket: &UnixStream) -> Option<Registration> {
        let socket = socket.as_raw_fd();
        let mut connections = guard(&self.connections);
        if self.stopping.load(Ordering::Relaxed) {
            return None;
        }
        if connections.len() >= cap {
            // A connection whose peer has already hung up (its thread not yet scheduled to
            // notice) goes first: it costs no live client its slot.
            let hung_up = connections
                .iter()
                .find(|(_, t)| t.phase.get(self.epoch) != Phase::Busy && peer_hung_up(t.socket))
                .map(|(id, _)| *id);
            let victim = match hung_up {
                Some(id) => id,
                None => {
                    connections
                        .iter()
                        .filter_map(|(id, t)| {
                            t.phase
                                .get(self.epoch)
                                .eviction_rank()
                                .map(|rank| (rank, *id))
                        })
                        .min()?
                        .1
                }
            };
            if let Some(victim) = connections.remove(&victim) {
                let _ = shutdown(victim.socket, Shutdown::Both);
            }
        }
        let id = {
            let mut next = guard(&self.next_id);
            *next += 1;
            *next
        };
        // Waiting for its Hello: idle from the start, so a newcomer that never speaks can be
        // evicted before its thread has even run.
        let phase = Arc::new(PhaseCell::new(self.epoch));
        connections.insert(
            id,
            Tracked {
                phase: Arc::clone(&phase),
                socket,
            },
        );
        Some(Registration {
            registry: Arc::clone(self),
            id,
            phase,
        })
    }

    /// Stops every connection from reading another request, and admits no more.
    pub fn stop_reading(&self) {
        let connections = guard(&self.connections);
        self.stopping.store(true, Ordering::Relaxed);
        for tracked in connections.values() {
            let _ = shutdown(tracked.socket, Shutdown::Read);
        }
    }

    /// True once [`stop_reading`](Self::stop_reading) was called.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Waits until no connection is live, for `within` at most; returns how many are left.
    pub fn wait_empty(&self, within: Duration) -> usize {
        let connections = guard(&self.connections);
        let (connections, _) = self
            .emptied
            .wait_timeout_while(connections, within, |c| !c.is_empty())
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        connections.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_shut(socket: &mut UnixStream) -> bool {
        use std::io::Read;
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        matches!(socket.read(&mut [0u8; 1]), Ok(0))
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_is_evicted() {
        let registry = Arc::new(Registry::default());
        let (mut sa, _pa) = UnixStream::pair().unwrap();
        let (sb, _pb) = UnixStream::pair().unwrap();
        let (sc, _pc) = UnixStream::pair().unwrap();
        let a = registry.admit(2, &sa).unwrap();
        let b = registry.admit(2, &sb).unwrap();
        a.set_idle();
        std::thread::sleep(Duration::from_millis(5));
        b.set_idle();
        let c = registry.admit(2, &sc).expect("room made");
        assert_eq!(registry.len(), 2);
        assert!(
            is_shut(&mut sa),
            "a was idle longest: its socket was shut down"
        );
        b.set_busy();
        c.set_busy();
        assert!(registry.admit(2, &sc).is_none(), "nobody idle: refuse");
        drop(c);
        assert!(registry.admit(2, &sc).is_some());
    }

    #[test]
    fn at_the_cap_a_connection_whose_peer_hung_up_goes_first() {
        let registry = Arc::new(Registry::default());
        let (mut sa, _pa) = UnixStream::pair().unwrap();
        let (sb, pb) = UnixStream::pair().unwrap();
        let (sc, _pc) = UnixStream::pair().unwrap();
        let a = registry.admit(2, &sa).unwrap();
        let b = registry.admit(2, &sb).unwrap();
        // a is mid-frame (evicted first among live ones), b idle; b's client has gone.
        a.set_reading();
        b.set_idle();
        drop(pb);
        let _c = registry.admit(2, &sc).expect("room made");
        assert_eq!(registry.len(), 2);
        sa.set_nonblocking(true).unwrap();
        assert!(
            matches!(std::io::Read::read(&mut sa, &mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the live partial frame kept its slot"
        );
        drop(b);
        drop(a);
    }

    #[test]
    fn at_the_cap_the_oldest_partial_frame_goes_before_any_idle_connection() {
        let registry = Arc::new(Registry::default());
        let (sa, _pa) = UnixStream::pair().unwrap();
        let (mut sb, _pb) = UnixStream::pair().unwrap();
        let (mut sc, _pc) = UnixStream::pair().unwrap();
        let (sd, _pd) = UnixStream::pair().unwrap();
        let a = registry.admit(3, &sa).unwrap();
        let b = registry.admit(3, &sb).unwrap();
        let c = registry.admit(3, &sc).unwrap();
        // a idle longest, then b and c mid-frame, b's frame the older.
        a.set_idle();
        b.set_reading();
        std::thread::sleep(Duration::from_millis(5));
        c.set_reading();
        let _d = registry.admit(3, &sd).expect("room made");
        assert!(is_shut(&mut sb), "b's partial frame was the oldest");
        let _e = registry.admit(3, &sd).expect("room made");
        assert!(
            is_shut(&mut sc),
            "then c's partial frame, before the idle a"
        );
        assert_eq!(registry.len(), 3);
        drop(a);
    }
}
