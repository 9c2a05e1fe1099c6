//! The running agent: the server, the lock-timer thread, the signal thread, the logind
//! thread (lock on sleep and screen lock) and the optional `-- CMD` child, all ending in one stop event that [`run`] waits for on a channel.
//!
//! Signals: `SIGUSR1` locks now; `SIGTERM`, `SIGINT` and `SIGHUP` lock (wiping every
//! plaintext), stop accepting, let connections finish their current request, and return
//! so `main` removes the socket and exits 0. Nothing calls `process::exit`, so every
//! `Drop` (and with it every wipe) runs.
//!
//! The four signals are blocked by [`Signals::block`], which `main` calls before it opens
//! the audit log or binds the socket, so every thread inherits the mask and no signal can
//! take the default action (death without cleanup) between the socket appearing and the
//! signal thread starting: a signal sent then stays pending until the thread takes it with
//! `sigwait`. Children started with `std::process::Command` (the `-- CMD` child, the
//! `--daemon` copy) get an empty mask: std resets it before `exec`.

use crate::daemon;
use crate::lock_state::LockEvent;
use crate::logind::{self, LockOn};
use crate::server::{DRAIN_TIMEOUT, Server};
use crate::socket::AgentSocket;
use crate::state::AgentState;
use anyhow::{Context, Result};
use avp_protocol::LockReason;
use nix::sys::signal::{SigSet, Signal};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitCode, ExitStatus};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Weak};

/// Why the agent stops.
#[derive(Debug)]
enum Stop {
    /// SIGTERM, SIGINT or SIGHUP.
    Signal(Signal),
    /// The `-- CMD` child ended.
    Child(ExitStatus),
}

/// The agent's signals, blocked on the thread that blocked them and on every thread it
/// starts afterwards.
#[derive(Debug)]
pub struct Signals {
    set: SigSet,
}

impl Signals {
    /// Blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 on the calling thread. Call it before any
    /// thread starts, so they all inherit the mask and only the signal thread takes them.
    pub fn block() -> Result<Self> {
        let mut set = SigSet::empty();
        for signal in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGUSR1,
        ] {
            set.add(signal);
        }
        set.thread_block()
            .context("cannot block the agent's signals")?;
        Ok(Self { set })
    }

    /// Starts the thread that takes the signals: SIGUSR1 locks, the others send a stop.
    /// The thread holds the state weakly, so it never keeps a plaintext alive, and it is
    /// left blocked in `sigwait` when the agent ends (a late signal stays pending).
    fn spawn(self, state: Weak<AgentState>, stop: Sender<Stop>) -> Result<()> {
        std::thread::Builder::new()
            .name("avp-signals".into())
            .spawn(move || {
                loop {
                    match self.set.wait() {
                        Ok(Signal::SIGUSR1) => {
                            if let Some(state) = state.upgrade() {
                                state.lock_state.lock(LockReason::Signal);
                            }
                        }
                        Ok(signal) => {
                            if stop.send(Stop::Signal(signal)).is_err() {
                                return;
                            }
                        }
                        Err(err) => {
                            tracing::error!(%err, "sigwait failed; signals are no longer handled");
                            return;
                        }
                    }
                }
            })
            .context("cannot start the signal thread")?;
        Ok(())
    }
}

/// Runs the agent until a terminating signal (or the end of `command`, if given).
pub fn run(
    state: Arc<AgentState>,
    socket: &AgentSocket,
    signals: Signals,
    lock_on: LockOn,
    command: Vec<OsString>,
) -> Result<ExitCode> {
    // Lock events go to systemd's status line and the audit log. The sink holds the state
    // weakly: the state owns the sink, and a strong reference would keep both alive (and the
    // audit log unflushed) past the end of `run`.
    let audited = Arc::downgrade(&state);
    state.lock_state.on_event(move |event| {
        daemon::notify_status(match event {
            LockEvent::Unlocked => "unlocked",
            LockEvent::Locked(_) => "locked",
        });
        let Some(state) = audited.upgrade() else {
            return;
        };
        if event == LockEvent::Unlocked {
            state.prompt.vault_unlocked();
        }
        if let Some(audit) = &state.audit {
            match event {
                LockEvent::Unlocked => audit.record_state_change("VAULT_UNLOCKED", "unlocked"),
                LockEvent::Locked(why) => audit.record_state_change("VAULT_LOCKED", why.as_str()),
            }
        }
    });
    let listener = socket
        .listener
        .try_clone()
        .context("cannot share the socket")?;
    let server = Server::start(listener, Arc::clone(&state)).context("cannot start serving")?;
    let timing = Arc::clone(&state);
    let timers = std::thread::Builder::new()
        .name("avp-timers".into())
        .spawn(move || timing.lock_state.run_timers())
        .context("cannot start the lock timers")?;
    let (stop, stopped) = channel();
    signals.spawn(Arc::downgrade(&state), stop.clone())?;
    logind::spawn(Arc::downgrade(&state), lock_on)?;
    daemon::notify_ready(!state.lock_state.is_unlocked());
    if daemon::is_daemon_child() {
        daemon::report_ready();
    }
    if let Some((program, args)) = command.split_first() {
        spawn_command(socket, program, args, stop)?;
    } else {
        drop(stop);
    }
    let exit = match stopped.recv() {
        Ok(Stop::Child(status)) => exit_code(status),
        Ok(Stop::Signal(signal)) => {
            tracing::info!("{}: stopping", signal.as_str());
            ExitCode::SUCCESS
        }
        Err(_) => ExitCode::SUCCESS,
    };
    daemon::notify_stopping();
    state.lock_state.lock(LockReason::Shutdown);
    state.lock_state.stop_timers();
    let _ = timers.join();
    server.stop(DRAIN_TIMEOUT);
    Ok(exit)
}

/// Exit status when the command cannot be executed (as in POSIX shells).
const EXIT_CANNOT_EXECUTE: i32 = 126;
/// Exit status when the command is not found (as in POSIX shells).
const EXIT_NOT_FOUND: i32 = 127;

/// `avp-agent -- CMD`: runs CMD with `AVP_SOCK` set; the agent ends when it does, with its
/// exit status (see [`exit_code`]), or 127/126 when CMD is not found or cannot be run.
/// A terminating signal to the agent ends the agent too (CMD is left to its own fate, as
/// with ssh-agent). A thread waits for the child.
fn spawn_command(
    socket: &AgentSocket,
    program: &OsString,
    args: &[OsString],
    stop: Sender<Stop>,
) -> Result<()> {
    let spawned = std::process::Command::new(program)
        .args(args)
        .env("AVP_SOCK", &socket.path)
        .env("AVP_AGENT_PID", std::process::id().to_string())
        .env_remove("NOTIFY_SOCKET")
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            // As a shell (and `avp run`) would: 127 not found, 126 found but not runnable.
            // It ends the agent the way the command's own exit would, socket removed.
            let code = match err.kind() {
                std::io::ErrorKind::NotFound => EXIT_NOT_FOUND,
                _ => EXIT_CANNOT_EXECUTE,
            };
            eprintln!("avp-agent: cannot run {}: {err}", program.to_string_lossy());
            let _ = stop.send(Stop::Child(ExitStatus::from_raw(code << 8)));
            return Ok(());
        }
    };
    std::thread::Builder::new()
        .name("avp-child".into())
        .spawn(move || match child.wait() {
            Ok(status) => {
                let _ = stop.send(Stop::Child(status));
            }
            Err(err) => {
                tracing::error!(%err, "cannot wait for the command");
                let _ = stop.send(Stop::Child(ExitStatus::from_raw(1 << 8)));
            }
        })
        .context("cannot wait for the command")?;
    Ok(())
}

/// The child's exit status, or 128 + the signal number if it was killed.
fn exit_code(status: ExitStatus) -> ExitCode {
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
