//! Lock-state and agent commands: `init`, `unlock`, `lock`, `passwd`, `status`, `discover`.

use crate::cli::{InitArgs, PassphraseArgs, PasswdArgs};
use crate::context::Ctx;
use crate::fail::Failure;
use crate::input;
use crate::output::{self, print_json, rfc3339, rfc3339_json};
use avp_client::{
    BackendStatus, Client, DiscoverInfo, ErrorCode, LockReason, PROTOCOL_VERSION, Passphrase,
    StatusInfo, VaultState,
};
use serde_json::json;

/// Work factors below this are fine for tests but weak for a real vault.
const WEAK_WORK_FACTOR: u8 = 15;

fn passphrase(
    args: &PassphraseArgs,
    prompt: &str,
    what: &str,
    confirm: bool,
) -> Result<Passphrase, Failure> {
    if args.passphrase_stdin {
        input::passphrase_from_stdin(what)
    } else {
        input::prompt_passphrase(prompt, confirm)
    }
}

fn state_done(ctx: &Ctx, state: VaultState, human: &str) -> Result<(), Failure> {
    if ctx.json {
        print_json(&json!({"state": state.as_str()}))
    } else {
        output::print(&format!("{human}\n"))
    }
}

pub fn init(ctx: &Ctx, args: InitArgs) -> Result<(), Failure> {
    if args.work_factor < WEAK_WORK_FACTOR {
        output::warn(&format!(
            "work factor {} is weak: use at least {WEAK_WORK_FACTOR} for a real vault",
            args.work_factor
        ));
    }
    let mut client = ctx.connect()?;
    let passphrase = passphrase(
        &args.passphrase,
        "New vault passphrase: ",
        "passphrase",
        true,
    )?;
    input::require_non_empty(&passphrase)?;
    client.init(passphrase, Some(args.work_factor))?;
    state_done(ctx, VaultState::Unlocked, "vault created and unlocked")
}

/// The vault's state, refusing with `VAULT_NOT_INITIALIZED` (`avp init`) when there is no
/// vault yet: asked before any passphrase, so the answer is `avp init`, not how to give one.
fn existing_vault_state(client: &mut Client) -> Result<VaultState, Failure> {
    let state = client.status()?.state;
    if state == VaultState::Uninitialized {
        return Err(avp_client::Error::VaultNotInitialized.into());
    }
    Ok(state)
}

pub fn unlock(ctx: &Ctx, args: PassphraseArgs) -> Result<(), Failure> {
    let mut client = ctx.connect()?;
    // Also words the answer (the agent checks the passphrase either way).
    let was_unlocked = existing_vault_state(&mut client)? == VaultState::Unlocked;
    let passphrase = passphrase(&args, "Vault passphrase: ", "passphrase", false)?;
    client.unlock(passphrase)?;
    let human = if was_unlocked {
        "vault already unlocked"
    } else {
        "vault unlocked"
    };
    state_done(ctx, VaultState::Unlocked, human)
}

pub fn lock(ctx: &Ctx) -> Result<(), Failure> {
    ctx.connect()?.lock()?;
    state_done(ctx, VaultState::Locked, "vault locked")
}

pub fn passwd(ctx: &Ctx, args: PasswdArgs) -> Result<(), Failure> {
    let args = PassphraseArgs::from(args);
    let mut client = ctx.connect()?;
    existing_vault_state(&mut client)?;
    let old = passphrase(&args, "Current passphrase: ", "current passphrase", false)?;
    let new = passphrase(&args, "New passphrase: ", "new passphrase", true)?;
    input::require_non_empty(&new)?;
    client.change_passphrase(old, new)?;
    if ctx.json {
        print_json(&json!({"passphrase_changed": true}))
    } else {
        output::print("passphrase changed\n")
    }
}

/// `1h 2m 3s` style, or `never`.
fn remaining(seconds: Option<u64>) -> String {
    seconds.map_or_else(
        || "-".to_owned(),
        |s| humantime::format_duration(std::time::Duration::from_secs(s)).to_string(),
    )
}

/// What a lock reason means, for `avp status`'s text.
fn lock_reason_text(reason: LockReason) -> &'static str {
    match reason {
        LockReason::Explicit => "avp lock or a LOCK request",
        LockReason::Idle => "no secret used for the idle period",
        LockReason::MaxLifetime => "the maximum unlock lifetime passed",
        LockReason::Sleep => "the system went to sleep",
        LockReason::ScreenLock => "the login session was locked",
        LockReason::Signal => "SIGUSR1",
        LockReason::Shutdown => "the agent stopped",
        // A newer agent's reason: its snake_case name is all we know.
        _ => "",
    }
}

/// `BACKEND_UNAVAILABLE` after the status was printed: a script checking `avp status`
/// learns that reads and writes fail, as they do.
fn backend_unavailable(info: &StatusInfo) -> Failure {
    let what = if info.backend_status == BackendStatus::Degraded {
        "only secrets read before can be read (from the agent's last-known copies), and none written"
    } else {
        "secrets can be neither read nor written"
    };
    Failure::refused(
        ErrorCode::BackendUnavailable,
        format!(
            "the {} backend at {} cannot be reached, so {what}",
            info.backend, info.vault_location
        ),
        "start it (or fix the agent's --redis-url) and check again with `avp status`",
    )
}

pub fn status(ctx: &Ctx) -> Result<(), Failure> {
    let mut client = ctx.connect()?;
    let info: StatusInfo = client.status()?;
    let backend_status = info.backend_status;
    let client_version = env!("CARGO_PKG_VERSION");
    let h = &info.hardening;
    if ctx.json {
        print_json(&json!({
            "state": info.state.as_str(),
            "vault_location": info.vault_location,
            "backend": info.backend,
            "backend_status": backend_status.as_str(),
            "degraded_since": rfc3339_json(info.degraded_since),
            "workspaces": info.workspaces,
            "secrets": info.secrets,
            "sessions": info.sessions,
            "idle_lock_in_seconds": info.idle_lock_in_seconds,
            "max_unlock_in_seconds": info.max_unlock_in_seconds,
            "agent_version": info.agent_version,
            "protocol_version": info.protocol_version,
            "pid": info.pid,
            "hardening": {
                "dumpable": h.dumpable,
                "core_limit": h.core_limit,
                "locked_memory_bytes": h.locked_memory_bytes,
                "memlock_limit": h.memlock_limit,
            },
            "last_lock_reason": info.last_lock_reason.map(LockReason::as_str),
            "last_locked_at": rfc3339_json(info.last_locked_at),
            "client_version": client_version,
            "client_protocol_version": PROTOCOL_VERSION,
            "socket": ctx.socket.display().to_string(),
            "audit_log": info.audit_log,
        }))?;
    } else {
        output::print(&status_text(ctx, &info, backend_status))?;
    }
    if matches!(
        backend_status,
        BackendStatus::Unavailable | BackendStatus::Degraded
    ) {
        return Err(backend_unavailable(&info));
    }
    Ok(())
}

/// A byte count as `12 KiB`, for the hardening line.
fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes / 1024)
}

/// A resource limit: `unlimited` for the kernel's infinity.
fn limit(value: u64) -> String {
    if value == u64::MAX {
        "unlimited".to_owned()
    } else {
        value.to_string()
    }
}

fn status_text(ctx: &Ctx, info: &StatusInfo, backend_status: BackendStatus) -> String {
    let client_version = env!("CARGO_PKG_VERSION");
    let h = &info.hardening;
    let mut text = format!(
        "vault:    {} ({}, {})\n\
         backend:  {}{}\n",
        info.state.as_str(),
        info.backend,
        info.vault_location,
        backend_status.as_str(),
        info.degraded_since
            .map(|since| format!(" since {} (reads from last-known copies)", rfc3339(since)))
            .unwrap_or_default(),
    );
    if info.state == VaultState::Unlocked {
        text.push_str(&format!(
            "secrets:  {} in {} workspace(s), {} session(s)\n\
             locks in: {} idle, {} at most\n",
            info.secrets,
            info.workspaces,
            info.sessions,
            remaining(info.idle_lock_in_seconds),
            remaining(info.max_unlock_in_seconds),
        ));
    }
    if let (Some(reason), Some(at)) = (info.last_lock_reason, info.last_locked_at) {
        let what = lock_reason_text(reason);
        let what = if what.is_empty() {
            String::new()
        } else {
            format!(" ({what})")
        };
        text.push_str(&format!(
            "locked:   last at {}, {}{what}\n",
            rfc3339(at),
            reason.as_str()
        ));
    }
    text.push_str(&format!(
        "agent:    avp-agent {} (protocol {}, pid {}) on {}\n\
         client:   avp {client_version} (protocol {PROTOCOL_VERSION})\n\
         hardened: dumpable {}, core limit {}, locked memory {} of {} allowed\n\
         audit:    {}\n",
        info.agent_version,
        info.protocol_version,
        info.pid,
        ctx.socket.display(),
        if h.dumpable { "yes" } else { "no" },
        limit(h.core_limit),
        kib(h.locked_memory_bytes),
        h.memlock_limit.map_or_else(|| "unlimited".to_owned(), kib),
        info.audit_log
            .as_deref()
            .unwrap_or("none (the agent keeps no audit log)"),
    ));
    text
}

pub fn discover(ctx: &Ctx) -> Result<(), Failure> {
    let info: DiscoverInfo = ctx.connect()?.discover()?;
    let caps = info.capabilities;
    let limits = info.limits;
    if ctx.json {
        return print_json(&json!({
            "protocol_version": info.protocol_version,
            "agent_version": info.agent_version,
            "conformance": info.conformance,
            "backend": {"name": info.backend.name, "status": info.backend.status.as_str()},
            "capabilities": {
                "versioning": caps.versioning,
                "expiration": caps.expiration,
                "rotation": caps.rotation,
                "audit": caps.audit,
            },
            "auth_methods": info.auth_methods,
            "limits": {
                "max_secret_value_length": limits.max_secret_value_length,
                "max_secret_name_length": limits.max_secret_name_length,
                "max_workspace_id_length": limits.max_workspace_id_length,
                "max_labels_per_secret": limits.max_labels_per_secret,
                "max_label_key_length": limits.max_label_key_length,
                "max_label_value_length": limits.max_label_value_length,
                "max_secrets_per_workspace": limits.max_secrets_per_workspace,
                "max_session_ttl_seconds": limits.max_session_ttl_seconds,
                "default_session_ttl_seconds": limits.default_session_ttl_seconds,
                "max_list_limit": limits.max_list_limit,
                "default_list_limit": limits.default_list_limit,
            },
        }));
    }
    let flag = |on: bool| if on { "yes" } else { "no" };
    output::print(&format!(
        "agent:        avp-agent {} (protocol {}, conformance {})\n\
         backend:      {} ({})\n\
         capabilities: versioning {}, expiration {}, rotation {}, audit {}\n\
         auth:         {}\n\
         limits:       value {} bytes, {} labels, {} secrets per workspace, session {} s\n",
        info.agent_version,
        info.protocol_version,
        info.conformance,
        info.backend.name,
        info.backend.status.as_str(),
        flag(caps.versioning),
        flag(caps.expiration),
        flag(caps.rotation),
        flag(caps.audit),
        info.auth_methods.join(", "),
        limits.max_secret_value_length,
        limits.max_labels_per_secret,
        limits.max_secrets_per_workspace,
        limits.max_session_ttl_seconds,
    ))
}
