//! The running agent: the server, the lock-timer task, signal handling and the optional
//! `-- CMD` child, all tied to one shutdown signal.
//!
//! Signals: `SIGUSR1` locks now; `SIGTERM`, `SIGINT` and `SIGHUP` lock (wiping every
//! plaintext), stop accepting, let connections finish their current request, and return
//! so `main` removes the socket and exits 0. Nothing calls `process::exit`, so every
//! `Drop` (and with it every wipe) runs.

use crate::daemon;
use crate::server::{DRAIN_TIMEOUT, Server};
use crate::socket::AgentSocket;
use crate::state::AgentState;
use crate::timer::BootInstant;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

/// Runs the agent until a terminating signal (or the end of `command`, if given).
pub async fn run(
    state: Arc<AgentState>,
    socket: &AgentSocket,
    command: Vec<OsString>,
) -> Result<ExitCode> {
    let listener = socket
        .listener
        .try_clone()
        .context("cannot share the socket")?;
    let server = Server::start(listener, Arc::clone(&state)).context("cannot start serving")?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let timers = tokio::spawn(lock_timers(Arc::clone(&state), shutdown_rx));
    // Handlers first: once the agent says it is ready, a SIGTERM must stop it cleanly (the
    // default action would kill it and leave its socket and lock file behind).
    let mut signals = Signals::install()?;
    daemon::notify_ready(!state.is_unlocked());
    if daemon::is_daemon_child() {
        daemon::report_ready();
    }
    let exit = match command.split_first() {
        Some((program, args)) => run_command(&state, socket, &mut signals, program, args).await?,
        None => {
            signals.wait_for_termination(&state).await;
            ExitCode::SUCCESS
        }
    };
    daemon::notify_stopping();
    state.lock("agent stopping");
    let _ = shutdown_tx.send(true);
    let _ = timers.await;
    server.stop(DRAIN_TIMEOUT);
    Ok(exit)
}

/// The signals the agent handles, caught from [`Signals::install`] on.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr1: Signal,
}

impl Signals {
    fn install() -> Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }

    /// Waits for SIGTERM/SIGINT/SIGHUP, locking on every SIGUSR1 meanwhile.
    async fn wait_for_termination(&mut self, state: &AgentState) {
        loop {
            tokio::select! {
                _ = self.term.recv() => { tracing::info!("SIGTERM: stopping"); return; }
                _ = self.int.recv() => { tracing::info!("SIGINT: stopping"); return; }
                _ = self.hup.recv() => { tracing::info!("SIGHUP: stopping"); return; }
                _ = self.usr1.recv() => { state.lock("SIGUSR1"); }
            }
        }
    }
}

/// `avp-agent -- CMD`: runs CMD with `AVP_SOCK` set; the agent ends when it does, with its
/// exit status (128 + signal number if it was killed). A terminating signal to the agent
/// ends the agent too (CMD is left to its own fate, as with ssh-agent).
async fn run_command(
    state: &AgentState,
    socket: &AgentSocket,
    signals: &mut Signals,
    program: &OsString,
    args: &[OsString],
) -> Result<ExitCode> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env("AVP_SOCK", &socket.path)
        .env("AVP_AGENT_PID", std::process::id().to_string())
        .env_remove("NOTIFY_SOCKET")
        .spawn()
        .with_context(|| format!("cannot run {}", program.to_string_lossy()))?;
    let status = tokio::select! {
        status = child.wait() => status?,
        () = signals.wait_for_termination(state) => return Ok(ExitCode::SUCCESS),
    };
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Locks when the idle or lifetime deadline passes. Wakes at the next deadline, at least
/// every `timer::MAX_NAP` (tokio's clock stops during suspend; `CLOCK_BOOTTIME` does not).
async fn lock_timers(state: Arc<AgentState>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let nap = state.timers().nap(BootInstant::now());
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = state.timers_changed.notified() => {}
            _ = shutdown.changed() => return,
        }
        if let Some(reason) = state.lock_if_due() {
            tracing::info!(reason = reason.as_str(), "locked by timer");
        }
    }
}
