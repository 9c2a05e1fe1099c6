//! `avp-bench`: measures avp against the physical floor, in one run on one machine, and
//! prints a table of figure, floor, ratio and target.
//!
//! ```text
//! cargo build --release && target/release/avp-bench          # the full run (minutes)
//! target/release/avp-bench --quick                            # tiny sizes (CI)
//! target/release/avp-bench --only retrieve,store              # some rows
//! target/release/avp-bench --help                             # the options
//! ```
//!
//! Floors: a bare Unix-socket echo server answering frames of the agent's response size
//! (latency, throughput); `avp --version` as a process (CLI); a 4 KiB append + fdatasync in
//! the vault directory (durable writes); age's scrypt unwrap of the same identity file
//! (unlock). Agent and floor are sampled in alternating blocks so machine noise hits both.
//! The Redis rows run when `redis-server` is installed.

mod args;
mod durable;
mod latency;
mod redis;
mod setup;
mod stats;
mod wire;

use clap::Parser;

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Config {
    /// Tiny sizes: proves the benchmark works, measures nothing worth quoting.
    pub quick: bool,
}

impl Config {
    /// `quick` in a quick run, else `full`.
    pub fn scale(&self, quick: usize, full: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

type RowFn = fn(&Config) -> Vec<stats::Row>;

const ROWS: &[(&str, RowFn)] = &[
    ("retrieve", latency::retrieve_round_trip),
    ("throughput", latency::retrieve_throughput),
    ("cli", latency::cli_get),
    ("store", durable::store_latency),
    ("unlock", durable::unlock_and_memory),
    ("idle", durable::idle_memory),
    ("redis", redis::redis_rows),
];

fn main() {
    let args = args::Args::parse();
    if let Some(path) = &args.echo_server {
        wire::serve_echo(path, args.reply_len);
    }
    let config = Config { quick: args.quick };
    let only = args.only;
    let mut rows = Vec::new();
    for (name, run) in ROWS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        eprintln!("avp-bench: measuring {name}…");
        rows.extend(run(&config));
    }
    println!(
        "\navp-bench {} on {} ({} cores){}\n",
        env!("CARGO_PKG_VERSION"),
        machine(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if config.quick {
            ", --quick (sizes too small to quote)"
        } else {
            ""
        }
    );
    stats::print_table(&rows);
}

fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
