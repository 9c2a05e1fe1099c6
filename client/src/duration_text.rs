//! A duration as people read it (`1m 30s`, `250ms`), for error messages. It writes exactly
//! what `humantime::format_duration` writes, so the messages did not change when the library
//! dropped that dependency (it now lives only in the CLI); a test pins the two together.

use std::fmt;
use std::time::Duration;

/// [`Duration`] in the `1year 2months 3days 4h 5m 6s 7ms 8us 9ns` form, zero parts left out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationText(pub(crate) Duration);

// humantime's calendar: a year is 365.25 days, a month 30.44 days.
const YEAR: u64 = 31_557_600;
const MONTH: u64 = 2_630_016;
const DAY: u64 = 86_400;

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let nanos = u64::from(self.0.subsec_nanos());
        if secs == 0 && nanos == 0 {
            return f.write_str("0s");
        }
        let in_year = secs % YEAR;
        let in_month = in_year % MONTH;
        let in_day = in_month % DAY;
        // Calendar units take a plural `s`; the short units never do.
        let parts: [(u64, &str, bool); 9] = [
            (secs / YEAR, "year", true),
            (in_year / MONTH, "month", true),
            (in_month / DAY, "day", true),
            (in_day / 3600, "h", false),
            (in_day % 3600 / 60, "m", false),
            (in_day % 60, "s", false),
            (nanos / 1_000_000, "ms", false),
            (nanos / 1000 % 1000, "us", false),
            (nanos % 1000, "ns", false),
        ];
        let mut started = false;
        for (value, unit, plural) in parts {
            if value == 0 {
                continue;
            }
            if started {
                f.write_str(" ")?;
            }
            write!(f, "{value}{unit}")?;
            if plural && value > 1 {
                f.write_str("s")?;
            }
            started = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_usual_timeouts() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(60), "1m"),
            (Duration::from_millis(1500), "1s 500ms"),
            (Duration::from_secs(90), "1m 30s"),
            (Duration::from_secs(2 * DAY + 1), "2days 1s"),
        ] {
            assert_eq!(DurationText(duration).to_string(), text);
        }
    }

    proptest! {
        /// The error messages read exactly as they did with humantime.
        #[test]
        fn same_text_as_humantime(secs in 0u64..(1 << 40), nanos in 0u32..1_000_000_000) {
            let duration = Duration::new(secs, nanos);
            prop_assert_eq!(
                DurationText(duration).to_string(),
                humantime::format_duration(duration).to_string()
            );
        }
    }
}
