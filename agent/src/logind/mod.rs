//! Locking when the user walks away: a thread follows logind (`org.freedesktop.login1`) on
//! the system D-Bus and locks the vault, through the same path as `SIGUSR1` and LOCK, when
//! - the machine is about to suspend or hibernate: the manager's `PrepareForSleep(true)`
//!   (`PrepareForSleep(false)`, the wake-up, is ignored), unless `--no-lock-on-sleep`;
//! - the user's login session is locked: that session's `Lock` signal, or its `LockedHint`
//!   property turning true (what screen lockers set), unless `--no-lock-on-screen-lock`.
//!   Which session is the user's is decided once, at start ([`session`]).
//!
//! The bus is the standard one: `DBUS_SYSTEM_BUS_ADDRESS`, or
//! `/run/dbus/system_bus_socket`. Without a bus, or without logind on it, the agent logs one
//! line and runs on without these triggers.
//!
//! Only signals from the current owner of `org.freedesktop.login1` count: any client of the
//! system bus may send a signal (even one addressed to us alone), so each one's sender is
//! compared with logind's unique name, followed through `NameOwnerChanged` when logind
//! restarts. The match rules name logind as sender too, so the bus does not wake us for
//! other programs' broadcasts.
//!
//! zbus's blocking API is used: it runs its own small executor thread for the socket, and
//! this module's thread blocks on the incoming messages, like every other wait in the agent.

mod session;
mod trigger;

use crate::state::AgentState;
use anyhow::{Context, Result};
use std::sync::Weak;
use trigger::{LOGIND, MANAGER_PATH, Trigger, Triggers};
use zbus::MatchRule;
use zbus::blocking::fdo::DBusProxy;
use zbus::blocking::{Connection, MessageIterator};
use zbus::message::Type;
use zbus::names::BusName;

/// Which logind events lock the vault (`--no-lock-on-sleep`, `--no-lock-on-screen-lock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOn {
    /// `PrepareForSleep(true)`.
    pub sleep: bool,
    /// The user's session's `Lock` signal and `LockedHint`.
    pub screen_lock: bool,
}

/// Starts the thread that follows logind, if any trigger is on. It holds the state weakly
/// (it never keeps a plaintext alive) and is left blocked on the bus when the agent ends.
pub fn spawn(state: Weak<AgentState>, lock_on: LockOn) -> Result<()> {
    if !lock_on.sleep && !lock_on.screen_lock {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("avp-logind".into())
        .spawn(move || {
            if let Some((messages, triggers)) = subscribe(lock_on) {
                follow(messages, &triggers, &state);
            }
        })
        .context("cannot start the logind thread")?;
    Ok(())
}

/// Connects, finds the session and subscribes: the messages to read and how to read them.
/// `None` (after one log line saying why) when there is nothing to follow.
fn subscribe(lock_on: LockOn) -> Option<(MessageIterator, Triggers)> {
    let without = "the vault will not lock on sleep or screen lock";
    let conn = match Connection::system() {
        Ok(conn) => conn,
        Err(err) => {
            tracing::info!("no system D-Bus ({err}): {without}");
            return None;
        }
    };
    // Subscribed before any match rule is added, so no signal can slip between the two.
    let messages = MessageIterator::from(&conn);
    let result = (|| -> zbus::Result<Option<Triggers>> {
        let bus = DBusProxy::new(&conn)?;
        let logind = match bus.get_name_owner(BusName::try_from(LOGIND)?) {
            Ok(owner) => owner.to_string(),
            Err(err) => {
                tracing::info!("logind is not on the system D-Bus ({err}): {without}");
                return Ok(None);
            }
        };
        let session = if lock_on.screen_lock {
            session::find(&conn)
        } else {
            None
        };
        let triggers = Triggers {
            logind,
            sleep: lock_on.sleep,
            session,
        };
        for rule in rules(&triggers)? {
            bus.add_match_rule(rule)?;
        }
        Ok(Some(triggers))
    })();
    match result {
        Ok(Some(triggers)) => {
            tracing::info!("following logind: {}", triggers.describe());
            Some((messages, triggers))
        }
        Ok(None) => None,
        Err(err) => {
            tracing::warn!("cannot follow logind on the system D-Bus ({err}): {without}");
            None
        }
    }
}

/// The match rules for `triggers`: logind's owner changes, and each signal that may lock.
fn rules(triggers: &Triggers) -> zbus::Result<Vec<MatchRule<'static>>> {
    let signal = || MatchRule::builder().msg_type(Type::Signal).sender(LOGIND);
    let mut rules = vec![
        MatchRule::builder()
            .msg_type(Type::Signal)
            .sender("org.freedesktop.DBus")?
            .interface("org.freedesktop.DBus")?
            .member("NameOwnerChanged")?
            .add_arg(LOGIND)?
            .build(),
    ];
    if triggers.sleep {
        rules.push(
            signal()?
                .path(MANAGER_PATH)?
                .interface(trigger::MANAGER)?
                .member("PrepareForSleep")?
                .build(),
        );
    }
    if let Some(path) = &triggers.session {
        let path = path.clone();
        rules.push(
            signal()?
                .path(path.clone())?
                .interface(trigger::SESSION)?
                .member("Lock")?
                .build(),
        );
        rules.push(
            signal()?
                .path(path)?
                .interface("org.freedesktop.DBus.Properties")?
                .member("PropertiesChanged")?
                .add_arg(trigger::SESSION)?
                .build(),
        );
    }
    Ok(rules)
}

/// Reads the bus until it goes away, locking on each trigger.
fn follow(messages: MessageIterator, triggers: &Triggers, state: &Weak<AgentState>) {
    let mut triggers = triggers.clone();
    for message in messages {
        let message = match message {
            Ok(message) => message,
            Err(err) => {
                tracing::debug!(%err, "unreadable D-Bus message skipped");
                continue;
            }
        };
        match triggers.classify(&message) {
            Some(Trigger::Lock(reason)) => {
                let Some(state) = state.upgrade() else {
                    return;
                };
                if state.lock_state.lock(reason) {
                    tracing::info!(reason = reason.as_str(), "locked on logind's signal");
                }
            }
            Some(Trigger::NewOwner(owner)) => {
                tracing::info!("logind restarted; following its new instance");
                triggers.logind = owner;
            }
            None => {}
        }
    }
    tracing::warn!("lost the system D-Bus: the vault will no longer lock on sleep or screen lock");
}
