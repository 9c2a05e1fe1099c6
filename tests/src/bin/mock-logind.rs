//! `mock-logind`: a stand-in for systemd-logind on a test bus, for the agent's lock-on-sleep
//! and lock-on-screen-lock tests (tests/tests/agent/logind.rs). It owns
//! `org.freedesktop.login1` on the bus `DBUS_SYSTEM_BUS_ADDRESS` names, serves the manager
//! methods the agent calls (`GetSessionByPID`, `GetSession`, `GetUser`) and two sessions,
//! `c1` and `c2`, and emits logind's signals when told to on stdin, one command a line:
//!
//! - `sleep true|false`: the manager's `PrepareForSleep(b)`;
//! - `lock c1|c2`: that session's `Lock` signal;
//! - `hint c1|c2 true|false`: that session's `LockedHint` changes (`PropertiesChanged`);
//! - `spoof-sleep`: `PrepareForSleep(true)` from a second connection that does not own
//!   logind's name, as any local program could send it: broadcast, and addressed to each
//!   other connection on the bus.
//!
//! It answers each command with `ok` on stdout once the bus has taken the signal, and
//! prints `ready` once it owns the name. Flags: `--by-pid` (GetSessionByPID answers `c1`
//! for any pid; without it, no pid has a session, as for a systemd user service) and
//! `--display c1` (the user's `Display` session; without it, none).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use zbus::blocking::Connection;
use zbus::blocking::connection::Builder;
use zbus::zvariant::{OwnedObjectPath, Value};
use zbus::{fdo, interface};

const MANAGER_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const SESSION: &str = "org.freedesktop.login1.Session";
const SESSIONS: [&str; 2] = ["c1", "c2"];

fn session_path(id: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("/org/freedesktop/login1/session/{id}"))
        .expect("a valid object path")
}

fn user_path(uid: u32) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("/org/freedesktop/login1/user/_{uid}"))
        .expect("a valid object path")
}

struct Manager {
    by_pid: bool,
}

#[interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, pid: u32) -> fdo::Result<OwnedObjectPath> {
        if self.by_pid {
            Ok(session_path("c1"))
        } else {
            Err(fdo::Error::Failed(format!(
                "PID {pid} does not belong to any known session"
            )))
        }
    }

    fn get_session(&self, id: String) -> fdo::Result<OwnedObjectPath> {
        if SESSIONS.contains(&id.as_str()) {
            Ok(session_path(&id))
        } else {
            Err(fdo::Error::Failed(format!("No session '{id}' known")))
        }
    }

    fn get_user(&self, uid: u32) -> fdo::Result<OwnedObjectPath> {
        Ok(user_path(uid))
    }
}

struct Session {
    id: String,
    locked_hint: bool,
}

#[interface(name = "org.freedesktop.login1.Session")]
impl Session {
    #[zbus(property)]
    fn id(&self) -> String {
        self.id.clone()
    }

    #[zbus(property)]
    fn locked_hint(&self) -> bool {
        self.locked_hint
    }
}

struct User {
    display: Option<String>,
}

#[interface(name = "org.freedesktop.login1.User")]
impl User {
    /// `("", "/")` when the user has no display session, as logind answers.
    #[zbus(property)]
    fn display(&self) -> (String, OwnedObjectPath) {
        match &self.display {
            Some(id) => (id.clone(), session_path(id)),
            None => (
                String::new(),
                OwnedObjectPath::try_from("/").expect("the root path"),
            ),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut by_pid = false;
    let mut display = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--by-pid" => by_pid = true,
            "--display" => display = Some(args.next().ok_or("--display needs a session id")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let uid = nix::unistd::getuid().as_raw();
    let mut builder = Builder::system()?
        .name("org.freedesktop.login1")?
        .serve_at(MANAGER_PATH, Manager { by_pid })?
        .serve_at(user_path(uid), User { display })?;
    for id in SESSIONS {
        builder = builder.serve_at(
            session_path(id),
            Session {
                id: id.to_owned(),
                locked_hint: false,
            },
        )?;
    }
    let logind = builder.build()?;
    let bystander = Connection::system()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["sleep", on] => {
                let on: bool = on.parse()?;
                logind.emit_signal(None::<()>, MANAGER_PATH, MANAGER, "PrepareForSleep", &on)?;
                settle(&logind)?;
            }
            ["lock", id] => {
                logind.emit_signal(None::<()>, session_path(id), SESSION, "Lock", &())?;
                settle(&logind)?;
            }
            ["hint", id, on] => {
                let on: bool = on.parse()?;
                let path = session_path(id);
                logind
                    .object_server()
                    .interface::<_, Session>(&path)?
                    .get_mut()
                    .locked_hint = on;
                let changed = HashMap::from([("LockedHint", Value::from(on))]);
                logind.emit_signal(
                    None::<()>,
                    &path,
                    "org.freedesktop.DBus.Properties",
                    "PropertiesChanged",
                    &(SESSION, changed, Vec::<&str>::new()),
                )?;
                settle(&logind)?;
            }
            ["spoof-sleep"] => {
                // Broadcast (the bus filters it out for a rule naming logind as sender), and
                // addressed to every other connection (which no match rule filters).
                bystander.emit_signal(
                    None::<()>,
                    MANAGER_PATH,
                    MANAGER,
                    "PrepareForSleep",
                    &true,
                )?;
                let names = zbus::blocking::fdo::DBusProxy::new(&bystander)?.list_names()?;
                let own = [logind.unique_name(), bystander.unique_name()];
                for name in names.iter().filter(|n| n.starts_with(':')) {
                    if own
                        .iter()
                        .any(|o| o.is_some_and(|o| o.as_str() == name.as_str()))
                    {
                        continue;
                    }
                    bystander.emit_signal(
                        Some(name.as_str()),
                        MANAGER_PATH,
                        MANAGER,
                        "PrepareForSleep",
                        &true,
                    )?;
                }
                settle(&bystander)?;
            }
            _ => return Err(format!("unknown command {line:?}").into()),
        }
        writeln!(out, "ok")?;
        out.flush()?;
    }
    Ok(())
}

/// Returns once the bus has routed everything `conn` sent before: the bus handles one
/// connection's messages in order, so the reply to a call comes after them.
fn settle(conn: &Connection) -> zbus::Result<()> {
    zbus::blocking::fdo::DBusProxy::new(conn)?.get_id()?;
    Ok(())
}
