//! The wrong-passphrase throttle: after the n-th consecutive wrong passphrase, the next
//! attempt may only start after [`backoff`]`(n)` (at most 10 s). Pure bookkeeping; the
//! lock state (`lock_state`) waits it out while holding its single-flight gate.

use std::time::{Duration, Instant};

/// Consecutive wrong passphrases and when the next attempt may start.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: u32,
    not_before: Option<Instant>,
}

/// The delay imposed after the `n`th consecutive wrong passphrase: 100 ms doubling each
/// time, at most 10 s. Ten wrong passphrases in a row cost at least
/// 0.1+0.2+0.4+0.8+1.6+3.2+6.4+10+10 = 32.7 s.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let millis = 100u64.saturating_mul(1u64 << (failures - 1).min(16));
    Duration::from_millis(millis).min(MAX_BACKOFF)
}

/// The cap on the wrong-passphrase delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Throttle {
    /// How long the next attempt must still wait, if at all.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.not_before
            .and_then(|when| when.checked_duration_since(now))
            .filter(|wait| !wait.is_zero())
    }

    /// A wrong passphrase: the next attempt waits longer.
    pub fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
        self.not_before = Some(Instant::now() + backoff(self.failures));
    }

    /// A right passphrase: no more delay.
    pub fn succeeded(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_at_ten_seconds() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(7), Duration::from_millis(6_400));
        assert_eq!(backoff(8), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        let ten: Duration = (1..10).map(backoff).sum();
        assert_eq!(ten, Duration::from_millis(32_700));
    }

    #[test]
    fn a_failure_delays_and_a_success_clears() {
        let mut throttle = Throttle::default();
        assert_eq!(throttle.wait(Instant::now()), None);
        throttle.failed();
        assert!(throttle.wait(Instant::now()).is_some());
        throttle.succeeded();
        assert_eq!(throttle.wait(Instant::now()), None);
    }
}
