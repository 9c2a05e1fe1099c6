//! The man pages: `avp man` and `avp-agent --install-man` write them (by default where `man`
//! finds them for the executable's `PATH` entry, as after `cargo install`), every subcommand
//! of `avp --help` has its page and is named in `avp.1`, and `man -l` renders them.

use avp_tests::cli::{code, text};
use avp_tests::{agent_bin, avp_bin};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The subcommands `avp --help` lists.
fn subcommands() -> Vec<String> {
    let out = Command::new(avp_bin()).arg("--help").output().unwrap();
    let help = text(&out.stdout);
    let commands = help.split("Commands:").nth(1).expect("a Commands: section");
    commands
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        // A wrapped description continues on a deeper-indented line.
        .filter(|line| !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .filter(|name| name != "help")
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `man -l PAGE` as plain text, when `man` is installed.
fn rendered(page: &Path) -> Option<String> {
    let out = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "man -l {}: {}",
        page.display(),
        text(&out.stderr)
    );
    Some(text(&out.stdout))
}

/// Links `binary` into `prefix/bin/` (a copy if a link cannot be made), as an install would.
fn install_into(prefix: &Path, binary: &Path) -> PathBuf {
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let target = bin.join(binary.file_name().unwrap());
    if std::fs::hard_link(binary, &target).is_err() {
        std::fs::copy(binary, &target).unwrap();
    }
    target
}

#[test]
fn avp_man_writes_a_page_per_subcommand_that_man_finds() {
    let prefix = tempfile::tempdir().unwrap();
    let avp = install_into(prefix.path(), &avp_bin());
    let out = Command::new(&avp).arg("man").output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let dir = prefix.path().join("share/man/man1");

    let top = read(&dir.join("avp.1"));
    let commands = subcommands();
    assert!(commands.len() >= 15, "{commands:?}");
    for command in &commands {
        assert!(top.contains(command), "avp.1 does not mention `{command}`");
        let page = read(&dir.join(format!("avp-{command}.1")));
        assert!(
            page.contains(&format!("avp-{command}")),
            "avp-{command}.1: {page}"
        );
    }
    assert!(read(&dir.join("avp-get.1")).contains("clear\\-after"));
    assert!(
        !dir.join("avp-__clip-clear.1").exists(),
        "a hidden command has a page"
    );

    if let Some(text) = rendered(&dir.join("avp-doctor.1")) {
        assert!(
            text.contains("NAME") && text.contains("avp-doctor"),
            "{text}"
        );
        // `man` finds the pages through PATH alone, as for ~/.cargo/bin after cargo install.
        let found = Command::new("man")
            .args(["-w", "avp-get"])
            .env_remove("MANPATH")
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", avp.parent().unwrap().display()),
            )
            .output()
            .unwrap();
        assert_eq!(
            text_path(&found.stdout),
            dir.join("avp-get.1"),
            "{}",
            avp_tests::cli::text(&found.stderr)
        );
    }
}

fn text_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(text(bytes).trim())
}

#[test]
fn avp_agent_install_man_writes_its_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(agent_bin())
        .args(["--install-man", "--man-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let page = read(&dir.path().join("avp-agent.1"));
    for flag in [
        "daemon",
        "install\\-units",
        "idle\\-lock",
        "redis\\-url",
        "audit\\-log",
    ] {
        assert!(page.contains(flag), "avp-agent.1 lacks --{flag}");
    }
    if let Some(text) = rendered(&dir.path().join("avp-agent.1")) {
        assert!(text.contains("--install-units"), "{text}");
    }
}
