//! `avp doctor`: checks the setup and explains, one line per check with the fix.
//!
//! Checks, in order: `XDG_RUNTIME_DIR`, the socket and its directory, the agent answering,
//! client and agent versions, the vault and its directory, `RLIMIT_MEMLOCK` against the
//! vault's size, the systemd user units, the audit log, and Redis when it is the backend.
//! A check is `ok`, `warn` (works, but worth knowing) or `fail`; `fail`s make the exit
//! status 1. Checks that need the agent are `skip`ped when it does not answer. No check
//! reads a secret.

use crate::cli::DoctorArgs;
use crate::context::Ctx;
use crate::fail::{EXIT_REFUSED, Failure};
use crate::output::{self, print_json};
use avp_client::{BackendStatus, Client, PROTOCOL_VERSION, StatusInfo, VaultState, socket_path};
use nix::unistd::{AccessFlags, Uid, access};
use serde_json::json;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug)]
struct Check {
    name: &'static str,
    outcome: Outcome,
    detail: String,
    /// What to do; empty when nothing is needed.
    fix: String,
}

fn check(name: &'static str, outcome: Outcome, detail: impl Into<String>, fix: &str) -> Check {
    Check {
        name,
        outcome,
        detail: detail.into(),
        fix: fix.to_owned(),
    }
}

fn ok(name: &'static str, detail: impl Into<String>) -> Check {
    check(name, Outcome::Ok, detail, "")
}

/// A directory only its owner — us — can enter: owned by our uid, no group/other bits.
fn private_dir(path: &Path) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|err| format!("{}: {err}", path.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    if meta.uid() != Uid::current().as_raw() {
        return Err(format!(
            "{} belongs to uid {}, not to you",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is mode {mode:04o}: other users can enter it",
            path.display()
        ));
    }
    Ok(())
}

fn runtime_dir() -> Check {
    let Some(dir) = std::env::var_os(socket_path::RUNTIME_DIR_ENV).filter(|d| !d.is_empty()) else {
        return check(
            "runtime dir",
            Outcome::Warn,
            "XDG_RUNTIME_DIR is not set: the socket falls back to /tmp/avp-$UID",
            "log in through a session that sets it (pam_systemd), or export XDG_RUNTIME_DIR=/run/user/$(id -u)",
        );
    };
    let dir = PathBuf::from(dir);
    if !dir.is_absolute() {
        return check(
            "runtime dir",
            Outcome::Warn,
            format!(
                "XDG_RUNTIME_DIR={} is relative, so it is ignored: the socket falls back to /tmp/avp-$UID",
                dir.display()
            ),
            "set XDG_RUNTIME_DIR to an absolute path, e.g. /run/user/$(id -u)",
        );
    }
    match private_dir(&dir) {
        Ok(()) => ok("runtime dir", format!("{} is private", dir.display())),
        Err(problem) => check(
            "runtime dir",
            Outcome::Fail,
            format!("XDG_RUNTIME_DIR: {problem}"),
            "point XDG_RUNTIME_DIR at a directory of yours with mode 0700",
        ),
    }
}

fn socket(path: &Path) -> Check {
    let fix_dir = "stop the agent, then `chmod 700` the directory (the agent creates it 0700 when it is missing)";
    if let Some(dir) = path.parent()
        && let Err(problem) = private_dir(dir)
    {
        let outcome = if dir.exists() {
            Outcome::Fail
        } else {
            Outcome::Warn
        };
        let fix = if dir.exists() {
            fix_dir
        } else {
            "start the agent (`eval \"$(avp-agent --daemon)\"` or the systemd socket)"
        };
        return check(
            "socket",
            outcome,
            format!("socket directory {problem}"),
            fix,
        );
    }
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) => {
            return check(
                "socket",
                Outcome::Fail,
                format!("{}: {err}", path.display()),
                "start the agent (`eval \"$(avp-agent --daemon)\"` or the systemd socket), or point AVP_SOCK at its socket",
            );
        }
    };
    if !meta.file_type().is_socket() {
        return check(
            "socket",
            Outcome::Fail,
            format!("{} is not a socket", path.display()),
            "remove it and start the agent",
        );
    }
    let mode = meta.permissions().mode() & 0o777;
    if meta.uid() != Uid::current().as_raw() || mode & 0o077 != 0 {
        return check(
            "socket",
            Outcome::Fail,
            format!("{} is mode {mode:04o}, uid {}", path.display(), meta.uid()),
            "restart the agent: it creates its socket 0600 in a 0700 directory",
        );
    }
    ok("socket", format!("{} (mode {mode:04o})", path.display()))
}

fn versions(info: &StatusInfo) -> Check {
    let client = env!("CARGO_PKG_VERSION");
    if info.protocol_version != PROTOCOL_VERSION {
        return check(
            "versions",
            Outcome::Fail,
            format!(
                "avp speaks protocol {PROTOCOL_VERSION}, the agent {}",
                info.protocol_version
            ),
            "install avp and avp-agent from the same release, then restart the agent",
        );
    }
    if info.agent_version != client {
        return check(
            "versions",
            Outcome::Warn,
            format!(
                "avp {client}, avp-agent {} (same protocol {PROTOCOL_VERSION})",
                info.agent_version
            ),
            "install both from the same release and restart the agent",
        );
    }
    ok(
        "versions",
        format!("avp and avp-agent {client}, protocol {PROTOCOL_VERSION}"),
    )
}

/// The bytes of the regular files directly in `dir` (the vault's files).
fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The vault directory when the backend is the local vault.
fn local_vault(info: &StatusInfo) -> Option<PathBuf> {
    let path = PathBuf::from(&info.vault_location);
    path.is_absolute().then_some(path)
}

fn vault(info: &StatusInfo) -> Check {
    let state = match info.state {
        VaultState::Uninitialized => {
            return check("vault", Outcome::Warn, "no vault yet", "run `avp init`");
        }
        state => state.as_str(),
    };
    let Some(dir) = local_vault(info) else {
        return ok(
            "vault",
            format!(
                "{state}, {} backend at {}",
                info.backend, info.vault_location
            ),
        );
    };
    match private_dir(&dir) {
        Ok(()) => ok("vault", format!("{state}, {} is private", dir.display())),
        Err(problem) => check(
            "vault",
            Outcome::Fail,
            format!("vault directory {problem}"),
            "`chmod 700` the vault directory (its files are encrypted, but names of its files and their sizes leak)",
        ),
    }
}

fn memlock(info: &StatusInfo) -> Check {
    let h = &info.hardening;
    let Some(limit) = h.memlock_limit else {
        return ok("memlock", "RLIMIT_MEMLOCK is unlimited");
    };
    let size = local_vault(info).map_or(0, |dir| dir_size(&dir));
    let need = size.max(h.locked_memory_bytes);
    if need > limit {
        return check(
            "memlock",
            Outcome::Fail,
            format!(
                "the vault needs about {need} bytes locked, RLIMIT_MEMLOCK is {limit}: secrets past it may be swapped out"
            ),
            "raise the limit: LimitMEMLOCK= in avp-agent.service (`systemctl --user edit avp-agent.service`), or `ulimit -l` before starting the agent",
        );
    }
    ok(
        "memlock",
        format!("RLIMIT_MEMLOCK {limit} bytes, vault about {need} bytes"),
    )
}

fn units(dir: &Path) -> Check {
    let socket = dir.join("avp-agent.socket");
    let service = dir.join("avp-agent.service");
    match (socket.exists(), service.exists()) {
        (false, false) => {
            return check(
                "systemd units",
                Outcome::Warn,
                format!("not installed in {}", dir.display()),
                "to start the agent at login: `avp-agent --install-units` (not needed with --daemon)",
            );
        }
        (true, true) => {}
        _ => {
            return check(
                "systemd units",
                Outcome::Fail,
                format!(
                    "only one of avp-agent.socket and .service is in {}",
                    dir.display()
                ),
                "reinstall both: `avp-agent --install-units`",
            );
        }
    }
    let wants = dir.join("sockets.target.wants/avp-agent.socket");
    if fs::symlink_metadata(&wants).is_err() {
        return check(
            "systemd units",
            Outcome::Warn,
            format!("installed in {} but not enabled", dir.display()),
            "`systemctl --user daemon-reload && systemctl --user enable --now avp-agent.socket`",
        );
    }
    ok(
        "systemd units",
        format!("installed and enabled in {}", dir.display()),
    )
}

fn audit_log(path: &Path) -> Check {
    let fix = "make it (and its directory) writable by you, or pass the agent --audit-log PATH";
    if path.is_dir() {
        return check(
            "audit log",
            Outcome::Fail,
            format!("{} is a directory", path.display()),
            fix,
        );
    }
    let target = if path.exists() {
        path
    } else {
        match path.parent() {
            Some(dir) if dir.exists() => dir,
            // The agent creates missing directories itself.
            _ => {
                return ok(
                    "audit log",
                    format!("{} (created by the agent)", path.display()),
                );
            }
        }
    };
    match access(target, AccessFlags::W_OK) {
        Ok(()) => ok("audit log", format!("{} is writable", path.display())),
        Err(errno) => check(
            "audit log",
            Outcome::Fail,
            format!("{} is not writable: {errno}", target.display()),
            fix,
        ),
    }
}

fn redis(client: &mut Client, info: &StatusInfo) -> Option<Check> {
    if !info.backend.contains("redis") {
        return None;
    }
    // STATUS (asked just before) counts the secrets through the backend when unlocked, so
    // DISCOVER's last known reachability is current.
    let status = client.discover().ok()?.backend.status;
    Some(match status {
        BackendStatus::Available => ok("redis", format!("{} answers", info.vault_location)),
        BackendStatus::Locked => check(
            "redis",
            Outcome::Skip,
            "the vault is locked: the agent reaches Redis once unlocked",
            "",
        ),
        other => check(
            "redis",
            Outcome::Fail,
            format!(
                "{} is {} (BACKEND_UNAVAILABLE)",
                info.vault_location,
                other.as_str()
            ),
            "start Redis or fix --redis-url / AVP_REDIS_URL of the agent",
        ),
    })
}

/// `$XDG_STATE_HOME/avp/audit.jsonl`, the agent's default, resolved as the agent does
/// (`directories`, agent/src/cli.rs).
fn default_audit_log() -> PathBuf {
    directories::BaseDirs::new()
        .and_then(|dirs| dirs.state_dir().map(|state| state.join("avp/audit.jsonl")))
        .unwrap_or_default()
}

/// `$XDG_CONFIG_HOME/systemd/user`, where `avp-agent --install-units` writes
/// (agent/src/units.rs).
fn default_units_dir() -> PathBuf {
    directories::BaseDirs::new()
        .map(|dirs| dirs.config_dir().join("systemd/user"))
        .unwrap_or_default()
}

fn run_checks(ctx: &Ctx, args: &DoctorArgs) -> Vec<Check> {
    let mut checks = vec![runtime_dir(), socket(&ctx.socket)];
    let agent = ctx.connect().and_then(|mut client| {
        let status = client.status()?;
        Ok((client, status))
    });
    match agent {
        Ok((mut client, info)) => {
            checks.push(ok(
                "agent",
                format!(
                    "avp-agent {} (pid {}) answers",
                    info.agent_version, info.pid
                ),
            ));
            checks.push(versions(&info));
            checks.push(vault(&info));
            checks.push(memlock(&info));
            checks.extend(redis(&mut client, &info));
        }
        Err(failure) => {
            let (problem, next) = failure.problem_and_next_step();
            checks.push(Check {
                name: "agent",
                outcome: Outcome::Fail,
                detail: format!("{problem} ({})", failure.code().unwrap_or_default()),
                fix: next.unwrap_or_default(),
            });
            for name in ["versions", "vault", "memlock"] {
                checks.push(check(name, Outcome::Skip, "needs the agent", ""));
            }
        }
    }
    let units_dir = args.units_dir.clone().unwrap_or_else(default_units_dir);
    checks.push(units(&units_dir));
    let audit = args.audit_log.clone().unwrap_or_else(default_audit_log);
    checks.push(audit_log(&audit));
    checks
}

pub fn doctor(ctx: &Ctx, args: DoctorArgs) -> Result<(), Failure> {
    let checks = run_checks(ctx, &args);
    let failed = checks.iter().filter(|c| c.outcome == Outcome::Fail).count();
    if ctx.json {
        let items: Vec<_> = checks
            .iter()
            .map(|c| {
                json!({
                    "check": c.name,
                    "status": c.outcome.as_str(),
                    "detail": c.detail,
                    "fix": (!c.fix.is_empty()).then_some(&c.fix),
                })
            })
            .collect();
        print_json(&json!({"ok": failed == 0, "failed": failed, "checks": items}))?;
    } else {
        let mut text = String::new();
        for c in &checks {
            text.push_str(&format!(
                "{:<5} {}: {}",
                c.outcome.as_str(),
                c.name,
                c.detail
            ));
            if !c.fix.is_empty() {
                text.push_str(&format!(" — fix: {}", c.fix));
            }
            text.push('\n');
        }
        if failed > 0 {
            text.push_str(&format!("{failed} check(s) failed\n"));
        }
        output::print(&text)?;
    }
    if failed > 0 {
        return Err(Failure::Exit(EXIT_REFUSED));
    }
    Ok(())
}
