//! `avp-bench`'s command line: `--help` prints the usage and exits 0, an unknown flag is a
//! usage error (exit 2); neither starts a measurement.

use clap::Parser;
use std::path::PathBuf;

/// Measures avp against the physical floor and prints figure, floor, ratio and target.
#[derive(Debug, Parser)]
#[command(name = "avp-bench", version)]
pub struct Args {
    /// Tiny sizes: proves the benchmark works, measures nothing worth quoting.
    #[arg(long)]
    pub quick: bool,
    /// Only these rows, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "ROWS",
        value_parser = ["retrieve", "throughput", "cli", "store", "unlock", "idle", "redis"]
    )]
    pub only: Option<Vec<String>>,
    /// Internal: serve the echo floor on this socket (avp-bench starts itself so).
    #[arg(long, hide = true, value_name = "SOCKET")]
    pub echo_server: Option<PathBuf>,
    /// Internal: the echo floor's reply payload size in bytes.
    #[arg(long, hide = true, default_value_t = 1024)]
    pub reply_len: usize,
}
