//! Which login session is the user's: the one whose lock locks the vault. Tried in order,
//! the first answer wins:
//! 1. the session of the agent's own process (`GetSessionByPID`): an agent started from a
//!    terminal or a desktop autostart;
//! 2. `$XDG_SESSION_ID` (`GetSession`): set by pam_systemd for login shells;
//! 3. the user's display session (`GetUser(uid)` → the user's `Display` property): the
//!    graphical session, for an agent the systemd user manager started, which belongs to no
//!    session of its own.
//!
//! Decided once, at start: a session that begins later is not followed.

use super::trigger::{LOGIND, MANAGER, MANAGER_PATH};
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

/// The user's session, or `None` (logged) when logind knows none.
pub fn find(conn: &Connection) -> Option<OwnedObjectPath> {
    let found = by_pid(conn)
        .map(|path| (path, "the agent's own session"))
        .or_else(|| by_env(conn).map(|path| (path, "$XDG_SESSION_ID")))
        .or_else(|| by_display(conn).map(|path| (path, "the user's display session")));
    match found {
        Some((path, how)) => {
            tracing::debug!(session = path.as_str(), "login session found: {how}");
            Some(path)
        }
        None => {
            tracing::info!(
                "logind knows no login session of this user: the vault will not lock on \
                 screen lock"
            );
            None
        }
    }
}

fn manager<B>(conn: &Connection, method: &str, body: &B) -> Option<OwnedObjectPath>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    conn.call_method(Some(LOGIND), MANAGER_PATH, Some(MANAGER), method, body)
        .and_then(|reply| reply.body().deserialize::<OwnedObjectPath>())
        .ok()
}

fn by_pid(conn: &Connection) -> Option<OwnedObjectPath> {
    manager(conn, "GetSessionByPID", &(std::process::id(),))
}

fn by_env(conn: &Connection) -> Option<OwnedObjectPath> {
    let id = std::env::var("XDG_SESSION_ID").ok()?;
    (!id.is_empty())
        .then(|| manager(conn, "GetSession", &(id,)))
        .flatten()
}

fn by_display(conn: &Connection) -> Option<OwnedObjectPath> {
    let uid = nix::unistd::getuid().as_raw();
    let user = manager(conn, "GetUser", &(uid,))?;
    let reply = conn
        .call_method(
            Some(LOGIND),
            user.as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.freedesktop.login1.User", "Display"),
        )
        .ok()?;
    let value: OwnedValue = reply.body().deserialize().ok()?;
    let (_id, path): (String, OwnedObjectPath) = value.try_into().ok()?;
    // "/" means the user has no display session.
    (path.as_str() != "/").then_some(path)
}
