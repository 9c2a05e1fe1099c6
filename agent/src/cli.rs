//! The daemon's command line (README "Running the agent") and the default paths (socket:
//! PROTOCOL.md §2.1; vault, audit log: README "Files and environment").

use crate::pinentry::PinentryChoice;
use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// `avp-agent`: holds your avp vault unlocked in locked memory and serves it on a Unix socket.
#[derive(Debug, Clone, Parser)]
#[command(name = "avp-agent", version, about, long_about = None)]
pub struct Args {
    /// Socket to listen on [default: $XDG_RUNTIME_DIR/avp/agent.sock, or /tmp/avp-$UID/agent.sock]
    #[arg(long, env = "AVP_SOCK", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Vault directory [default: $XDG_DATA_HOME/avp]
    #[arg(long, env = "AVP_VAULT", value_name = "DIR")]
    pub vault: Option<PathBuf>,

    /// Audit log, one JSON line per access decision [default: $XDG_STATE_HOME/avp/audit.jsonl]
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,

    /// Lock after this long without a secret operation (e.g. 30s, 15m, 2h; 0 = never)
    #[arg(long, value_name = "DUR", default_value = "15m", value_parser = parse_duration)]
    pub idle_lock: Duration,

    /// Lock this long after unlocking, whatever the activity (0 = never)
    #[arg(long, value_name = "DUR", default_value = "12h", value_parser = parse_duration)]
    pub max_unlock: Duration,

    /// Do not lock when the system goes to sleep (logind's PrepareForSleep on the system D-Bus)
    #[arg(long)]
    pub no_lock_on_sleep: bool,

    /// Do not lock when your login session is locked (its logind Lock signal or LockedHint)
    #[arg(long)]
    pub no_lock_on_screen_lock: bool,

    /// Versions kept per secret
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub history: u32,

    /// Storage backend
    #[arg(long, value_enum, default_value_t = BackendKind::Local)]
    pub backend: BackendKind,

    /// Redis URL for `--backend redis` (redis://, rediss:// or unix://)
    // `hide_env_values`: --help must not print a password taken from the environment.
    #[arg(
        long,
        value_name = "URL",
        env = "AVP_REDIS_URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,

    /// Replicas that must confirm each Redis write (WAIT) before it is acknowledged
    /// [default: 1 with redis+sentinel://, else 0]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=16))]
    pub redis_min_replicas: Option<u32>,

    /// How long a Redis write waits for those replicas
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = parse_duration)]
    pub redis_wait_timeout: Duration,

    /// With redis+sentinel://, how long a request waits for a failover to complete
    #[arg(long, value_name = "DUR", default_value = "15s", value_parser = parse_duration)]
    pub redis_failover_wait: Duration,

    /// While Redis is unreachable, an unlocked agent answers reads from what it last read
    /// or wrote, up to this long after its last contact (0 = never)
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_duration)]
    pub redis_stale_reads: Duration,

    /// Most simultaneous client connections
    #[arg(long, value_name = "N", default_value_t = 256, hide = true)]
    pub max_connections: usize,

    /// Close a connection that sends no request for this long
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_duration, hide = true)]
    pub connection_idle_timeout: Duration,

    /// A request frame that has started must arrive whole within this long
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration, hide = true)]
    pub frame_timeout: Duration,

    /// Ask for the passphrase with this pinentry program when a caller waits for an unlock
    /// (`auto`: pinentry-gnome3/-qt/-gtk with a display, pinentry-curses/-tty with a known
    /// terminal; `off`: never)
    #[arg(long, value_name = "PROGRAM", default_value = "off")]
    pub pinentry: PinentryChoice,

    /// The longest a pinentry dialog (and a caller waiting for it) lasts
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = parse_duration)]
    pub pinentry_timeout: Duration,

    /// After a dialog that did not unlock (cancelled, timed out), open no new one for this long
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub pinentry_cooldown: Duration,

    /// Run in the background and print shell commands that set AVP_SOCK (like ssh-agent)
    #[arg(long, short = 'd', conflicts_with = "command")]
    pub daemon: bool,

    /// With --daemon: print C-shell commands
    #[arg(short = 'c', requires = "daemon", conflicts_with = "sh")]
    pub csh: bool,

    /// With --daemon: print Bourne-shell commands (the default)
    #[arg(short = 's', requires = "daemon")]
    pub sh: bool,

    /// Print the systemd user units (ExecStart= set to this executable) and exit
    #[arg(long, conflicts_with_all = ["daemon", "install_units"])]
    pub print_units: bool,

    /// Write the systemd user units to ~/.config/systemd/user (or --units-dir) and exit
    #[arg(long, conflicts_with = "daemon")]
    pub install_units: bool,

    /// With --install-units: the directory to write them to
    #[arg(long, value_name = "DIR", requires = "install_units")]
    pub units_dir: Option<PathBuf>,

    /// Write the man page avp-agent.1 to share/man/man1 beside this executable's bin/
    /// directory (or --man-dir) and exit
    #[arg(long, conflicts_with_all = ["daemon", "print_units", "install_units"])]
    pub install_man: bool,

    /// With --install-man: the directory to write it to
    #[arg(long, value_name = "DIR", requires = "install_man")]
    pub man_dir: Option<PathBuf>,

    /// Run COMMAND with AVP_SOCK set, and exit when it exits, with its status
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// The storage backends `--backend` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The age vault in the vault directory.
    #[value(name = "vault")]
    Local,
    /// A Redis server (needs --redis-url).
    Redis,
}

/// Parses `30s`, `15m`, `12h`, `1h30m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|e| format!("{e} (use e.g. 30s, 15m, 12h)"))
}

/// Every path the agent uses, resolved once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The socket.
    pub socket: PathBuf,
    /// The vault directory.
    pub vault: PathBuf,
    /// The audit log.
    pub audit_log: PathBuf,
}

impl Args {
    /// Resolves the paths, applying the defaults (socket: PROTOCOL.md §2.1; the
    /// others: README "Files and environment").
    pub fn paths(&self) -> Result<Paths> {
        let dirs = directories::BaseDirs::new();
        let home_fallback = |what: &str| -> Result<PathBuf> {
            bail!("cannot find the {what} directory: set HOME, or pass the path explicitly")
        };
        let vault = match &self.vault {
            Some(path) => path.clone(),
            None => match &dirs {
                Some(dirs) => dirs.data_dir().join("avp"),
                None => home_fallback("data")?,
            },
        };
        let audit_log = match &self.audit_log {
            Some(path) => path.clone(),
            None => match dirs.as_ref().and_then(|d| d.state_dir()) {
                Some(state) => state.join("avp/audit.jsonl"),
                None => home_fallback("state")?,
            },
        };
        let socket = avp_protocol::socket_path::resolve(self.socket.as_deref());
        let absolute = |p: PathBuf| -> Result<PathBuf> {
            std::path::absolute(&p).with_context(|| format!("resolving {}", p.display()))
        };
        Ok(Paths {
            socket: absolute(socket)?,
            vault: absolute(vault)?,
            audit_log: absolute(audit_log)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_usual_forms() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn flags_parse() {
        let args = Args::try_parse_from([
            "avp-agent",
            "--socket",
            "/run/x.sock",
            "--idle-lock",
            "2s",
            "--",
            "env",
        ])
        .unwrap();
        assert_eq!(args.socket, Some(PathBuf::from("/run/x.sock")));
        assert_eq!(args.idle_lock, Duration::from_secs(2));
        assert_eq!(args.command, vec![OsString::from("env")]);
        assert!(Args::try_parse_from(["avp-agent", "-c"]).is_err());
    }
}
