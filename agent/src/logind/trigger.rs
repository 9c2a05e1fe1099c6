//! Which logind messages lock the vault: pure classification of one D-Bus message, given
//! logind's current unique name and the session followed.

use avp_protocol::LockReason;
use std::collections::HashMap;
use zbus::Message;
use zbus::message::Type;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

/// logind's well-known bus name.
pub const LOGIND: &str = "org.freedesktop.login1";
/// The manager object and interface (`PrepareForSleep`, `GetSessionByPID`, …).
pub const MANAGER_PATH: &str = "/org/freedesktop/login1";
pub const MANAGER: &str = "org.freedesktop.login1.Manager";
/// A session's interface (`Lock`, `LockedHint`).
pub const SESSION: &str = "org.freedesktop.login1.Session";

/// What the thread follows.
#[derive(Debug, Clone)]
pub struct Triggers {
    /// logind's current unique name: the only sender believed.
    pub logind: String,
    /// Lock on `PrepareForSleep(true)`.
    pub sleep: bool,
    /// The session whose `Lock` and `LockedHint` lock the vault, if any.
    pub session: Option<OwnedObjectPath>,
}

/// What one message means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Lock the vault, for this reason.
    Lock(LockReason),
    /// logind has a new unique name (it restarted); `""` while it is gone.
    NewOwner(String),
}

impl Triggers {
    /// One line for the log: what locks the vault.
    pub fn describe(&self) -> String {
        let mut on = Vec::new();
        if self.sleep {
            on.push("sleep".to_owned());
        }
        if let Some(session) = &self.session {
            on.push(format!("lock of session {}", session.as_str()));
        }
        if on.is_empty() {
            "no trigger (no login session found)".to_owned()
        } else {
            format!("locking on {}", on.join(" and "))
        }
    }

    /// What `message` means, if anything.
    pub fn classify(&self, message: &Message) -> Option<Trigger> {
        if message.message_type() != Type::Signal {
            return None;
        }
        let header = message.header();
        let sender = header.sender()?.as_str();
        let interface = header.interface()?.as_str();
        let member = header.member()?.as_str();
        let path = header.path()?.as_str();
        if sender == "org.freedesktop.DBus"
            && interface == "org.freedesktop.DBus"
            && member == "NameOwnerChanged"
        {
            let (name, _old, new): (String, String, String) = message.body().deserialize().ok()?;
            return (name == LOGIND).then_some(Trigger::NewOwner(new));
        }
        if sender != self.logind {
            return None;
        }
        match (interface, member) {
            (MANAGER, "PrepareForSleep") if self.sleep && path == MANAGER_PATH => {
                let going_to_sleep: bool = message.body().deserialize().ok()?;
                going_to_sleep.then_some(Trigger::Lock(LockReason::Sleep))
            }
            (SESSION, "Lock") if self.is_session(path) => {
                Some(Trigger::Lock(LockReason::ScreenLock))
            }
            ("org.freedesktop.DBus.Properties", "PropertiesChanged") if self.is_session(path) => {
                type Changed = (String, HashMap<String, OwnedValue>, Vec<String>);
                let (changed_interface, changed, _invalidated): Changed =
                    message.body().deserialize().ok()?;
                let locked = changed.get("LockedHint")?;
                (changed_interface == SESSION && bool::try_from(locked).ok()?)
                    .then_some(Trigger::Lock(LockReason::ScreenLock))
            }
            _ => None,
        }
    }

    fn is_session(&self, path: &str) -> bool {
        self.session.as_ref().is_some_and(|s| s.as_str() == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::Value;

    const LOGIND_NAME: &str = ":1.7";
    const OURS: &str = "/org/freedesktop/login1/session/c1";
    const OTHER: &str = "/org/freedesktop/login1/session/c2";

    fn triggers() -> Triggers {
        Triggers {
            logind: LOGIND_NAME.to_owned(),
            sleep: true,
            session: Some(OwnedObjectPath::try_from(OURS).unwrap()),
        }
    }

    fn signal<B>(sender: &str, path: &str, interface: &str, member: &str, body: &B) -> Message
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        Message::signal(path, interface, member)
            .unwrap()
            .sender(sender)
            .unwrap()
            .build(body)
            .unwrap()
    }

    fn hint(path: &str, locked: bool) -> Message {
        let changed = HashMap::from([("LockedHint", Value::from(locked))]);
        let body = (SESSION, changed, Vec::<String>::new());
        signal(
            LOGIND_NAME,
            path,
            "org.freedesktop.DBus.Properties",
            "PropertiesChanged",
            &body,
        )
    }

    const SLEEP: Option<Trigger> = Some(Trigger::Lock(LockReason::Sleep));
    const SCREEN: Option<Trigger> = Some(Trigger::Lock(LockReason::ScreenLock));

    #[test]
    fn sleep_locks_and_waking_up_does_not() {
        let t = triggers();
        let sleep = |on: bool| signal(LOGIND_NAME, MANAGER_PATH, MANAGER, "PrepareForSleep", &on);
        assert_eq!(t.classify(&sleep(true)), SLEEP);
        assert_eq!(t.classify(&sleep(false)), None);
        let off = Triggers { sleep: false, ..t };
        assert_eq!(off.classify(&sleep(true)), None);
    }

    #[test]
    fn only_our_sessions_lock_counts() {
        let t = triggers();
        let lock = |path: &str| signal(LOGIND_NAME, path, SESSION, "Lock", &());
        assert_eq!(t.classify(&lock(OURS)), SCREEN);
        assert_eq!(t.classify(&lock(OTHER)), None);
        assert_eq!(t.classify(&hint(OURS, true)), SCREEN);
        assert_eq!(t.classify(&hint(OURS, false)), None);
        assert_eq!(t.classify(&hint(OTHER, true)), None);
        let no_session = Triggers { session: None, ..t };
        assert_eq!(no_session.classify(&lock(OURS)), None);
        assert_eq!(no_session.classify(&hint(OURS, true)), None);
    }

    #[test]
    fn signals_from_anyone_but_logind_are_ignored() {
        let t = triggers();
        let spoofed = signal(":1.99", MANAGER_PATH, MANAGER, "PrepareForSleep", &true);
        assert_eq!(t.classify(&spoofed), None);
        assert_eq!(
            t.classify(&signal(":1.99", OURS, SESSION, "Lock", &())),
            None
        );
    }

    #[test]
    fn a_restarted_logind_is_followed() {
        let t = triggers();
        let owner_changed = |name: &str, sender: &str| {
            signal(
                sender,
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "NameOwnerChanged",
                &(name, LOGIND_NAME, ":1.8"),
            )
        };
        assert_eq!(
            t.classify(&owner_changed(LOGIND, "org.freedesktop.DBus")),
            Some(Trigger::NewOwner(":1.8".to_owned()))
        );
        assert_eq!(
            t.classify(&owner_changed("org.example", "org.freedesktop.DBus")),
            None
        );
        assert_eq!(t.classify(&owner_changed(LOGIND, ":1.99")), None);
    }
}
