//! The connection threads: whoever is woken serves. Every connection thread with nothing to
//! serve waits for the next client in its own `epoll` on the listening socket, registered with
//! `EPOLLEXCLUSIVE`, so the kernel wakes one of them per client; that thread accepts, admits
//! and serves the client itself, then goes back to waiting. A thread per connection as
//! before, but a new client costs no thread creation and no hand-off from an accepting
//! thread to a serving one: on a small VM each was a wake-up of another CPU, and together
//! they made a one-shot `avp get` wait ~0.1 ms for the agent. A thread that takes a client
//! when no other is waiting hands it to a new thread and goes on waiting, so someone always
//! accepts and a burst of clients is accepted as fast as before; threads beyond
//! [`SPARE_THREADS`] waiting end when their connection does.

use super::accept::{Acceptor, Turn};
use crate::connection::{self, Connection};
use crate::sync::guard;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// Threads kept waiting for the next client when no client needs them: enough that a burst
/// of one-shot commands (a script calling `avp get` in a loop, a shell's completion) never
/// waits for a thread to start, few enough to cost nothing idle.
pub(super) const SPARE_THREADS: usize = 4;

/// Stack of a connection thread: decoding and dispatch need little, and 256 of them must
/// stay cheap.
const CONNECTION_STACK: usize = 256 << 10;

/// The count of connection threads alive, so that stopping can wait for the last: each
/// holds the agent state, whose drop writes the audit log's last lines.
#[derive(Debug, Default)]
pub(super) struct Live {
    threads: Mutex<usize>,
    ended: Condvar,
}

impl Live {
    fn begin(&self) {
        *guard(&self.threads) += 1;
    }

    fn end(&self) {
        let mut threads = guard(&self.threads);
        *threads -= 1;
        if *threads == 0 {
            self.ended.notify_all();
        }
    }

    /// Waits until no thread is alive, until `deadline` at most; how many are left.
    pub(super) fn wait_none(&self, deadline: Instant) -> usize {
        let threads = guard(&self.threads);
        let within = deadline.saturating_duration_since(Instant::now());
        let (threads, _) = self
            .ended
            .wait_timeout_while(threads, within, |n| *n > 0)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *threads
    }
}

/// A client accepted and admitted, to serve.
type Client = (UnixStream, Connection);

/// Starts a connection thread, serving `first` (if any) before it waits for clients.
pub(super) fn spawn_thread(acceptor: &Arc<Acceptor>, first: Option<Client>) -> std::io::Result<()> {
    let live = Arc::clone(acceptor.live());
    let acceptor = Arc::clone(acceptor);
    live.begin();
    let ending = Arc::clone(&live);
    let spawned = std::thread::Builder::new()
        .name("avp-conn".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            serve_clients(&acceptor, first);
            // The state goes before the count says so: the last thread's end lets `stop`
            // return and the state drop.
            drop(acceptor);
            ending.end();
        });
    spawned.map(drop).inspect_err(|_| live.end())
}

/// A connection thread's life: serve, wait for a client, and again, until the server stops
/// or enough other threads are waiting. A thread counts itself among the waiting
/// (`Acceptor::waiting`) from the moment it decides to wait until it takes a client, so the
/// count a thread taking a client sees is never short of the threads that will accept.
fn serve_clients(acceptor: &Arc<Acceptor>, first: Option<Client>) {
    let waiting = &acceptor.waiting;
    if let Some((stream, conn)) = first {
        connection::serve(stream, conn);
        if !stays(waiting) {
            return;
        }
    } else {
        waiting.fetch_add(1, Ordering::SeqCst);
    }
    let mut kept = None;
    loop {
        let waiter = match kept.take().map_or_else(|| acceptor.waiter(), Ok) {
            Ok(waiter) => waiter,
            Err(err) => {
                waiting.fetch_sub(1, Ordering::SeqCst);
                // The thread that started this one goes on accepting.
                tracing::error!(%err, "cannot wait for clients on a new thread");
                return;
            }
        };
        let (stream, conn) = match acceptor.next_client(&waiter) {
            Turn::Serve(stream, conn) => (stream, conn),
            Turn::Again => {
                kept = Some(waiter);
                continue;
            }
            Turn::Stop => {
                waiting.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        };
        if waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Nobody else waits for the next client: a new thread serves this one and this
            // thread goes on accepting, so a burst of clients never waits for a thread to
            // start per client before it is even accepted.
            waiting.fetch_add(1, Ordering::SeqCst);
            if let Err(err) = spawn_thread(acceptor, Some((stream, conn))) {
                tracing::error!(%err, "cannot start a connection thread; closing the connection");
            }
            kept = Some(waiter);
            continue;
        }
        acceptor.put_back(waiter);
        connection::serve(stream, conn);
        if !stays(waiting) {
            return;
        }
    }
}

/// After serving: counts the thread among the waiting and true, unless [`SPARE_THREADS`]
/// wait already (then the thread ends).
fn stays(waiting: &AtomicUsize) -> bool {
    if waiting.fetch_add(1, Ordering::SeqCst) < SPARE_THREADS {
        return true;
    }
    waiting.fetch_sub(1, Ordering::SeqCst);
    false
}
