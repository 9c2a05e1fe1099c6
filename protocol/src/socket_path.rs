//! Where the agent's socket is (PROTOCOL.md §2.1), the one copy of the rule that the agent
//! and every client share: an explicit path wins, then `AVP_SOCK`, then
//! `$XDG_RUNTIME_DIR/avp/agent.sock` when `XDG_RUNTIME_DIR` is set and absolute, else
//! `/tmp/avp-$UID/agent.sock`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable naming the socket.
pub const SOCKET_ENV: &str = "AVP_SOCK";

/// The XDG variable naming the per-user runtime directory the socket lives in (`avp
/// doctor` checks that directory too).
pub const RUNTIME_DIR_ENV: &str = "XDG_RUNTIME_DIR";

/// The socket to use: `explicit` if given, else from the process environment.
pub fn resolve(explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(path) => path.to_path_buf(),
        None => from_env(|key| std::env::var_os(key), nix::unistd::getuid().as_raw()),
    }
}

/// The default socket for this process's environment and real uid.
pub fn default_socket() -> PathBuf {
    resolve(None)
}

/// The rule itself, over any environment lookup and uid, so it can be tested without
/// touching the process environment. Empty variables count as unset, and a relative
/// `XDG_RUNTIME_DIR` is ignored as the XDG base directory specification requires.
pub fn from_env(var: impl Fn(&str) -> Option<OsString>, uid: u32) -> PathBuf {
    if let Some(sock) = var(SOCKET_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(sock);
    }
    if let Some(runtime) = runtime_dir_from(&var) {
        return runtime.join("avp").join("agent.sock");
    }
    PathBuf::from(format!("/tmp/avp-{uid}/agent.sock"))
}

/// `$XDG_RUNTIME_DIR` as the rule reads it (set and absolute), for the other things that
/// belong there (`avp edit`'s temporary file).
pub fn runtime_dir() -> Option<PathBuf> {
    runtime_dir_from(&|key: &str| std::env::var_os(key))
}

fn runtime_dir_from(var: &impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    var(RUNTIME_DIR_ENV)
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn avp_sock_wins() {
        let vars = [
            ("AVP_SOCK", "/x/s.sock"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
        ];
        assert_eq!(from_env(env(&vars), 1), PathBuf::from("/x/s.sock"));
    }

    #[test]
    fn xdg_runtime_dir_when_absolute() {
        let vars = [("XDG_RUNTIME_DIR", "/run/user/1000")];
        assert_eq!(
            from_env(env(&vars), 1000),
            PathBuf::from("/run/user/1000/avp/agent.sock")
        );
    }

    #[test]
    fn relative_or_empty_runtime_dir_falls_back_to_tmp() {
        for vars in [
            &[("XDG_RUNTIME_DIR", "run/user")][..],
            &[("XDG_RUNTIME_DIR", "")][..],
            &[("AVP_SOCK", "")][..],
            &[][..],
        ] {
            assert_eq!(
                from_env(env(vars), 4242),
                PathBuf::from("/tmp/avp-4242/agent.sock")
            );
        }
    }

    #[test]
    fn explicit_path_beats_everything() {
        assert_eq!(
            resolve(Some(Path::new("/given.sock"))),
            PathBuf::from("/given.sock")
        );
    }
}
