//! The systemd user units, shipped inside the binary so `avp-agent --install-units` can
//! write them with `ExecStart=` pointing at this very executable: nobody edits paths by hand.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// `systemd/avp-agent.socket`.
pub const SOCKET_UNIT: &str = include_str!("../../systemd/avp-agent.socket");
/// `systemd/avp-agent.service`, with `@AVP_AGENT@` where the executable goes.
pub const SERVICE_UNIT: &str = include_str!("../../systemd/avp-agent.service");

/// Quotes a path for `ExecStart=`: `%` is a specifier, so it is doubled; a path with white
/// space or quotes is double-quoted with C-style escapes.
fn exec_path(exe: &Path) -> String {
    let text = exe.display().to_string().replace('%', "%%");
    if text
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

/// The two unit files, named, with `ExecStart=` set to `exe`.
pub fn render(exe: &Path) -> [(&'static str, String); 2] {
    [
        ("avp-agent.socket", SOCKET_UNIT.to_owned()),
        (
            "avp-agent.service",
            SERVICE_UNIT.replace("@AVP_AGENT@", &exec_path(exe)),
        ),
    ]
}

/// Where user units go: `$XDG_CONFIG_HOME/systemd/user` (`~/.config/systemd/user`).
pub fn default_dir() -> Result<PathBuf> {
    let dirs = directories::BaseDirs::new().context("cannot find your home directory")?;
    Ok(dirs.config_dir().join("systemd/user"))
}

/// `--print-units`: both files on stdout, each after a `# <name>` line.
pub fn print(exe: &Path) -> String {
    render(exe)
        .iter()
        .map(|(name, text)| format!("# {name}\n{text}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `--install-units`: writes both files into `dir` and says what to run next.
pub fn install(exe: &Path, dir: &Path) -> Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in render(exe) {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(format!(
        "installed avp-agent.socket and avp-agent.service in {}\n\
         start it now and at every login with:\n  \
         systemctl --user daemon-reload && systemctl --user enable --now avp-agent.socket\n",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_points_at_the_executable_and_is_quoted_when_needed() {
        let [(_, socket), (_, service)] = render(Path::new("/home/u/.cargo/bin/avp-agent"));
        assert!(socket.contains("ListenStream=%t/avp/agent.sock"));
        assert!(service.contains("\nExecStart=/home/u/.cargo/bin/avp-agent\n"));
        assert!(!service.contains("@AVP_AGENT@"));
        let [_, (_, odd)] = render(Path::new("/opt/my apps/100%/avp-agent"));
        assert!(
            odd.contains("\nExecStart=\"/opt/my apps/100%%/avp-agent\"\n"),
            "{odd}"
        );
    }

    #[test]
    fn install_writes_both_units() {
        let dir = tempfile::tempdir().unwrap();
        let note = install(Path::new("/usr/bin/avp-agent"), dir.path()).unwrap();
        assert!(note.contains("enable --now avp-agent.socket"));
        assert!(dir.path().join("avp-agent.socket").exists());
        let service = std::fs::read_to_string(dir.path().join("avp-agent.service")).unwrap();
        assert!(service.contains("ExecStart=/usr/bin/avp-agent"));
    }
}
