//! The two lock timers (PROTOCOL.md §9.9): the idle lock, reset by every secret operation, and
//! the maximum unlock lifetime, counted from the unlock. Both run on `CLOCK_BOOTTIME` so
//! time spent suspended counts: a laptop closed overnight wakes up locked.
//!
//! [`LockTimers`] is pure arithmetic on [`BootInstant`]s (unit-tested with made-up times);
//! the agent's timer thread (`LockState::run_timers`) wakes at the next deadline — at least
//! every [`MAX_NAP`], because a condvar's timeout runs on a clock that stops during
//! suspend — and locks when one has passed.

use avp_protocol::LockReason;
use std::time::Duration;

/// How long the timer thread sleeps at most before re-reading `CLOCK_BOOTTIME`.
pub const MAX_NAP: Duration = Duration::from_secs(1);

/// A reading of `CLOCK_BOOTTIME`: monotonic, and it keeps counting during suspend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BootInstant(Duration);

impl BootInstant {
    /// Now.
    pub fn now() -> Self {
        let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
            .expect("CLOCK_BOOTTIME is available on every supported Linux");
        Self(Duration::from(ts))
    }

    /// An instant at `since_boot` (for tests).
    pub const fn from_duration(since_boot: Duration) -> Self {
        Self(since_boot)
    }

    /// This instant plus `d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d))
    }

    /// Time from `earlier` to this instant, zero if `earlier` is later.
    pub fn since(self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

/// The idle and lifetime deadlines of one unlocked period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTimers {
    /// Idle period; zero disables the idle lock.
    idle: Duration,
    /// Maximum unlock lifetime; zero disables it.
    max: Duration,
    /// Set while unlocked.
    running: Option<Running>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Running {
    unlocked_at: BootInstant,
    last_activity: BootInstant,
}

impl LockTimers {
    /// Stopped timers with the given periods.
    pub const fn new(idle: Duration, max: Duration) -> Self {
        Self {
            idle,
            max,
            running: None,
        }
    }

    /// The vault was unlocked at `now`.
    pub fn start(&mut self, now: BootInstant) {
        self.running = Some(Running {
            unlocked_at: now,
            last_activity: now,
        });
    }

    /// The vault was locked.
    pub fn stop(&mut self) {
        self.running = None;
    }

    /// A secret operation happened: the idle period starts again.
    pub fn touch(&mut self, now: BootInstant) {
        if let Some(running) = &mut self.running {
            running.last_activity = now;
        }
    }

    fn idle_deadline(&self) -> Option<BootInstant> {
        let running = self.running?;
        (!self.idle.is_zero()).then(|| running.last_activity.plus(self.idle))
    }

    fn max_deadline(&self) -> Option<BootInstant> {
        let running = self.running?;
        (!self.max.is_zero()).then(|| running.unlocked_at.plus(self.max))
    }

    /// Whether a deadline has passed, and which.
    pub fn due(&self, now: BootInstant) -> Option<LockReason> {
        if self.max_deadline().is_some_and(|d| now >= d) {
            return Some(LockReason::MaxLifetime);
        }
        if self.idle_deadline().is_some_and(|d| now >= d) {
            return Some(LockReason::Idle);
        }
        None
    }

    /// The earliest deadline, if any timer runs.
    pub fn next_deadline(&self) -> Option<BootInstant> {
        match (self.idle_deadline(), self.max_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Seconds until the idle lock, while unlocked with an idle period.
    pub fn idle_remaining(&self, now: BootInstant) -> Option<u64> {
        self.idle_deadline().map(|d| d.since(now).as_secs())
    }

    /// Seconds until the lifetime lock, while unlocked with a lifetime.
    pub fn max_remaining(&self, now: BootInstant) -> Option<u64> {
        self.max_deadline().map(|d| d.since(now).as_secs())
    }

    /// How long the timer thread should sleep before checking again.
    pub fn nap(&self, now: BootInstant) -> Duration {
        self.next_deadline()
            .map_or(MAX_NAP, |d| d.since(now).min(MAX_NAP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> BootInstant {
        BootInstant::from_duration(Duration::from_secs(s))
    }

    #[test]
    fn idle_lock_is_reset_by_activity() {
        let mut t = LockTimers::new(Duration::from_secs(10), Duration::from_secs(100));
        assert_eq!(t.due(at(1000)), None, "stopped timers never fire");
        t.start(at(0));
        assert_eq!(t.due(at(9)), None);
        t.touch(at(9));
        assert_eq!(t.due(at(18)), None);
        assert_eq!(t.due(at(19)), Some(LockReason::Idle));
        assert_eq!(t.idle_remaining(at(15)), Some(4));
    }

    #[test]
    fn max_lifetime_fires_despite_activity() {
        let mut t = LockTimers::new(Duration::from_secs(10), Duration::from_secs(25));
        t.start(at(0));
        for s in (0..25).step_by(5) {
            t.touch(at(s));
            assert_eq!(t.due(at(s)), None);
        }
        assert_eq!(t.due(at(25)), Some(LockReason::MaxLifetime));
        assert_eq!(t.next_deadline(), Some(at(25)));
    }

    #[test]
    fn zero_disables_a_timer() {
        let mut t = LockTimers::new(Duration::ZERO, Duration::ZERO);
        t.start(at(0));
        assert_eq!(t.due(at(1_000_000)), None);
        assert_eq!(t.nap(at(5)), MAX_NAP);
    }

    #[test]
    fn naps_never_exceed_the_cap() {
        let mut t = LockTimers::new(Duration::from_secs(3600), Duration::ZERO);
        t.start(at(0));
        assert_eq!(t.nap(at(0)), MAX_NAP);
        assert_eq!(t.nap(at(3599)), Duration::from_millis(1000));
    }

    #[test]
    fn boottime_advances() {
        let a = BootInstant::now();
        let b = BootInstant::now();
        assert!(b >= a);
    }
}
