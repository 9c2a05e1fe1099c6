//! Which pinentry to run and what it gets from the agent: `--pinentry PROGRAM|auto|off`,
//! resolved once at start from the agent's own environment — the user's session as systemd
//! or the login shell gave it to the agent — never from a requesting process, so a caller
//! cannot point the dialog at another display or terminal.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `--pinentry` as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinentryChoice {
    /// No pinentry: an AUTHENTICATE that waits for an unlock gets `VAULT_LOCKED` at once.
    Off,
    /// A graphical pinentry when the agent's environment names a display, else a terminal
    /// one when the agent knows its terminal (`GPG_TTY`, or its own stdin), else none.
    Auto,
    /// This program.
    Program(PathBuf),
}

impl std::str::FromStr for PinentryChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "off" | "none" => Ok(Self::Off),
            "auto" => Ok(Self::Auto),
            "" => Err("give a program, `auto` or `off`".into()),
            program => Ok(Self::Program(PathBuf::from(program))),
        }
    }
}

/// Graphical pinentries, preferred in this order when a display is known.
const GRAPHICAL: &[&str] = &[
    "pinentry-gnome3",
    "pinentry-qt",
    "pinentry-gtk-2",
    "pinentry-gtk",
    "pinentry",
];

/// Terminal pinentries, when only a terminal is known.
const TERMINAL: &[&str] = &["pinentry-curses", "pinentry-tty"];

/// The variables a pinentry is given, when the agent has them; everything else (the
/// agent's `AVP_*`, `NOTIFY_SOCKET`, `LD_*`, …) is left out.
const KEPT_VARIABLES: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    avp_protocol::socket_path::RUNTIME_DIR_ENV,
    "DBUS_SESSION_BUS_ADDRESS",
    "TERM",
    "GPG_TTY",
];

/// A resolved pinentry: the program, its environment and the `OPTION`s sent first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinentryCommand {
    /// The program, run with no arguments.
    pub program: PathBuf,
    /// Its whole environment.
    pub env: Vec<(OsString, OsString)>,
    /// `OPTION` arguments (`ttyname=/dev/pts/3`, `display=:0`, …).
    pub options: Vec<String>,
}

/// The session the agent runs in, as far as a pinentry cares.
#[derive(Debug, Default)]
struct Session {
    env: Vec<(OsString, OsString)>,
    tty: Option<String>,
    term: Option<String>,
    display: Option<String>,
    graphical: bool,
}

impl Session {
    fn from_process() -> Self {
        let env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(key, _)| {
                let key = key.to_string_lossy();
                KEPT_VARIABLES.contains(&key.as_ref()) || key.starts_with("LC_")
            })
            .collect();
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        // GPG_TTY is how gpg users name their terminal to an agent; a terminal on the
        // agent's stdin (started by hand) counts too. systemd gives neither.
        let tty = var("GPG_TTY").or_else(|| {
            nix::unistd::ttyname(std::io::stdin())
                .ok()
                .map(|path| path.to_string_lossy().into_owned())
        });
        let display = var("DISPLAY");
        let graphical = display.is_some() || var("WAYLAND_DISPLAY").is_some();
        Self {
            env,
            tty,
            term: var("TERM"),
            display,
            graphical,
        }
    }
}

impl PinentryCommand {
    /// Resolves `choice` against the agent's environment. `None`: no pinentry (off, or
    /// `auto` found none).
    pub fn resolve(choice: &PinentryChoice) -> Option<Self> {
        let session = Session::from_process();
        let program = match choice {
            PinentryChoice::Off => return None,
            PinentryChoice::Program(program) => program.clone(),
            PinentryChoice::Auto => auto_program(&session)?,
        };
        let mut options = Vec::new();
        if let Some(tty) = &session.tty {
            options.push(format!("ttyname={tty}"));
        }
        if let Some(term) = &session.term {
            options.push(format!("ttytype={term}"));
        }
        if let Some(display) = &session.display {
            options.push(format!("display={display}"));
        }
        Some(Self {
            program,
            env: session.env,
            options,
        })
    }
}

/// `auto`: the first installed pinentry that can reach the user.
fn auto_program(session: &Session) -> Option<PathBuf> {
    let candidates = if session.graphical {
        GRAPHICAL
    } else if session.tty.is_some() {
        TERMINAL
    } else {
        return None;
    };
    let path = std::env::var_os("PATH")?;
    candidates.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse() {
        assert_eq!("off".parse(), Ok(PinentryChoice::Off));
        assert_eq!("auto".parse(), Ok(PinentryChoice::Auto));
        assert_eq!(
            "/usr/bin/pinentry-tty".parse(),
            Ok(PinentryChoice::Program("/usr/bin/pinentry-tty".into()))
        );
        assert!("".parse::<PinentryChoice>().is_err());
    }

    #[test]
    fn auto_needs_a_display_or_a_terminal() {
        assert_eq!(auto_program(&Session::default()), None);
    }
}
