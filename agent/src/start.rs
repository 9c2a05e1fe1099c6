//! What `avp-agent` does, from its arguments to its exit code: wiring only, the top of the
//! agent's layers (the binary itself only installs the allocator and calls [`main`]). See
//! the other modules for what each part does.

use crate::audit::Audit;
use crate::cli::{Args, BackendKind};
use crate::logind::LockOn;
use crate::pinentry::{PinentryChoice, PinentryCommand};
use crate::prompt::PromptSettings;
use crate::socket::AgentSocket;
use crate::state::{AgentState, Settings};
use crate::storage::{BackendConfig, BackendSettings, open_key_store};
use crate::{daemon, harden, lifecycle, man, units};
use anyhow::{Context, Result};
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;

/// The agent: parses the command line, runs, and reports any error.
pub fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            // Once, on stderr (the journal under systemd); a log line too would repeat it.
            eprintln!("avp-agent: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AVP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// `--pinentry*`, resolved against the agent's own session (`pinentry::setup`).
fn prompt_settings(args: &Args) -> PromptSettings {
    let command = PinentryCommand::resolve(&args.pinentry);
    match (&command, &args.pinentry) {
        (Some(command), _) => {
            tracing::info!(program = %command.program.display(), "pinentry for waiting callers");
        }
        (None, PinentryChoice::Auto) => {
            tracing::info!("--pinentry auto found no display or terminal to ask on: none used");
        }
        (None, _) => {}
    }
    PromptSettings {
        command,
        timeout: args.pinentry_timeout,
        cooldown: args.pinentry_cooldown,
    }
}

fn run(args: Args) -> Result<ExitCode> {
    if args.print_units || args.install_units {
        let exe = std::env::current_exe().context("cannot find the avp-agent executable")?;
        if args.print_units {
            print!("{}", units::print(&exe));
        } else {
            let dir = match args.units_dir {
                Some(dir) => dir,
                None => units::default_dir()?,
            };
            print!("{}", units::install(&exe, &dir)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.install_man {
        let dir = match args.man_dir {
            Some(dir) => dir,
            None => {
                let exe =
                    std::env::current_exe().context("cannot find the avp-agent executable")?;
                man::default_dir(&exe)?
            }
        };
        print!("{}", man::install(&dir)?);
        return Ok(ExitCode::SUCCESS);
    }
    harden::harden_process()?;
    let paths = args.paths()?;
    if args.daemon {
        return daemon::launch_background(&args, &paths);
    }
    // Before any thread starts (the audit flusher, the server) and before the socket is
    // bound: from here on a SIGTERM waits for the signal thread instead of killing the
    // agent without removing its socket (see `lifecycle`).
    let signals = lifecycle::Signals::block()?;
    if daemon::is_daemon_child() {
        daemon::detach_session();
    }
    let config = match args.backend {
        BackendKind::Local => BackendConfig::Local {
            dir: paths.vault.clone(),
        },
        #[cfg(feature = "redis")]
        BackendKind::Redis => BackendConfig::Redis {
            url: args.redis_url.clone().context(
                "--backend redis needs --redis-url URL (or AVP_REDIS_URL), \
                 e.g. redis://127.0.0.1:6379",
            )?,
            options: crate::storage::redis::RedisOptions {
                min_replicas: args.redis_min_replicas,
                wait_timeout: args.redis_wait_timeout,
                failover_wait: args.redis_failover_wait,
                stale_reads: args.redis_stale_reads,
            },
        },
        #[cfg(not(feature = "redis"))]
        BackendKind::Redis => anyhow::bail!("the redis backend is not built into this avp-agent"),
    };
    let backend_settings = BackendSettings {
        history: args.history as usize,
        ..BackendSettings::default()
    };
    let key_store =
        open_key_store(&config, backend_settings).map_err(|err| anyhow::anyhow!("{err}"))?;
    // The audit log is checked before the socket is bound, so a refused log leaves no
    // socket or lock file behind.
    let audit = Audit::open(&paths.audit_log)
        .with_context(|| format!("cannot open the audit log {}", paths.audit_log.display()))?;
    let socket = AgentSocket::open(&paths.socket)?;
    let settings = Settings {
        idle_lock: args.idle_lock,
        max_unlock: args.max_unlock,
        max_connections: args.max_connections,
        connection_idle_timeout: args.connection_idle_timeout,
        frame_timeout: args.frame_timeout,
        prompt: prompt_settings(&args),
        ..Settings::default()
    };
    let state = Arc::new(AgentState::new(key_store, Some(audit), settings));
    tracing::info!(
        vault = %state.lock_state.key_store().location(),
        audit = %paths.audit_log.display(),
        pid = std::process::id(),
        "avp-agent {} started",
        env!("CARGO_PKG_VERSION")
    );
    let lock_on = LockOn {
        sleep: !args.no_lock_on_sleep,
        screen_lock: !args.no_lock_on_screen_lock,
    };
    let result = lifecycle::run(Arc::clone(&state), &socket, signals, lock_on, args.command);
    socket.remove();
    drop(state);
    tracing::info!("avp-agent stopped");
    result
}
