//! Percentiles over latency samples, and the result table.

use std::time::Duration;

/// Sorted latency samples.
#[derive(Debug, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Sorts `samples` (at least one).
    pub fn new(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        Self(samples)
    }

    /// The `q`-quantile (0.5 = median), nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        let rank = ((self.0.len() as f64) * q).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    /// Median.
    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    /// 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }
}

/// A human unit for a duration.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A human unit for bytes.
pub fn fmt_bytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub figure: String,
    /// The measurement.
    pub measured: String,
    /// The floor measured in the same run, if any.
    pub floor: String,
    /// measured / floor, or another comparison.
    pub ratio: String,
    /// The target.
    pub target: String,
    /// Whether the target is met.
    pub met: bool,
}

impl Row {
    /// A row comparing `measured` to `floor` against a maximum ratio.
    pub fn ratio(figure: &str, measured: Duration, floor: Duration, max_ratio: f64) -> Self {
        let ratio = measured.as_secs_f64() / floor.as_secs_f64().max(1e-12);
        Self {
            figure: figure.to_owned(),
            measured: fmt_duration(measured),
            floor: fmt_duration(floor),
            ratio: format!("{ratio:.2}×"),
            target: format!("≤ {max_ratio}× floor"),
            met: ratio <= max_ratio,
        }
    }
}

/// Prints the rows as a Markdown table.
pub fn print_table(rows: &[Row]) {
    println!("| figure | measured | floor (same run) | ratio | target | met |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let met = if r.met { "yes" } else { "**no**" };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.figure, r.measured, r.floor, r.ratio, r.target, met
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let s = Samples::new((1..=100).map(Duration::from_micros).collect());
        assert_eq!(s.p50(), Duration::from_micros(50));
        assert_eq!(s.p99(), Duration::from_micros(99));
        assert_eq!(s.quantile(1.0), Duration::from_micros(100));
    }
}
