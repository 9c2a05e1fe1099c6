//! Blocking synchronisation for the connection threads: a first-come-first-served gate
//! (single-flight unlocks that cannot starve a right passphrase) and a counting budget with
//! a deadline (frame memory), and the poison-tolerant mutex lock every layer uses. A leaf
//! module: it imports nothing of the agent.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Locks a std mutex, recovering from poisoning: every critical section in the agent leaves the
/// data consistent, so a panic elsewhere must not take the agent down.
pub fn guard<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A lock handed out strictly in arrival order (a ticket lock).
#[derive(Debug, Default)]
pub struct FairGate {
    /// (next ticket to hand out, ticket being served).
    tickets: Mutex<(u64, u64)>,
    turn: Condvar,
}

/// Holding the gate; dropping it lets the next ticket in.
#[derive(Debug)]
pub struct GateGuard<'a> {
    gate: &'a FairGate,
}

impl FairGate {
    /// Waits for this caller's turn.
    pub fn lock(&self) -> GateGuard<'_> {
        let mut tickets = guard(&self.tickets);
        let mine = tickets.0;
        tickets.0 += 1;
        while tickets.1 != mine {
            tickets = self
                .turn
                .wait(tickets)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        GateGuard { gate: self }
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        guard(&self.gate.tickets).1 += 1;
        self.gate.turn.notify_all();
    }
}

/// A pool of units (e.g. bytes of frame memory) taken for a while and given back.
#[derive(Debug)]
pub struct Budget {
    available: Mutex<usize>,
    returned: Condvar,
}

/// Units taken from a [`Budget`]; given back on drop.
#[derive(Debug)]
pub struct Grant<'a> {
    budget: &'a Budget,
    units: usize,
}

impl Budget {
    /// A budget of `units`.
    pub fn new(units: usize) -> Self {
        Self {
            available: Mutex::new(units),
            returned: Condvar::new(),
        }
    }

    /// Takes `units`, waiting until `deadline` at most; `None` if they never came free (or
    /// can never: more than the whole budget).
    pub fn take(&self, units: usize, deadline: Instant) -> Option<Grant<'_>> {
        let mut available = guard(&self.available);
        while *available < units {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (next, timeout) = self
                .returned
                .wait_timeout(available, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            available = next;
            if timeout.timed_out() && *available < units {
                return None;
            }
        }
        *available -= units;
        Some(Grant {
            budget: self,
            units,
        })
    }

    /// Units free now.
    pub fn available(&self) -> usize {
        *guard(&self.available)
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        *guard(&self.budget.available) += self.units;
        self.budget.returned.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn the_gate_serves_in_arrival_order() {
        let gate = Arc::new(FairGate::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = gate.lock();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let (gate, order) = (Arc::clone(&gate), Arc::clone(&order));
                let t = std::thread::spawn(move || {
                    let _turn = gate.lock();
                    order.lock().unwrap().push(i);
                });
                // Let each thread take its ticket before the next one starts.
                std::thread::sleep(Duration::from_millis(30));
                t
            })
            .collect();
        drop(first);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn the_budget_waits_until_its_deadline_and_returns_units() {
        let budget = Budget::new(10);
        let soon = || Instant::now() + Duration::from_millis(50);
        let big = budget.take(8, soon()).unwrap();
        assert!(budget.take(5, soon()).is_none(), "only 2 left");
        assert!(
            budget.take(11, soon()).is_none(),
            "more than the whole budget"
        );
        drop(big);
        assert_eq!(budget.available(), 10);
        assert!(budget.take(10, soon()).is_some());
    }
}
