//! The dotenv export sourced by real shells: `set -a; . ./file` in dash (POSIX sh), bash and
//! zsh must give exactly the stored bytes and run nothing, and [`parse`] must read the same
//! file back the same. Values are random bytes (printable and control, no NUL) around a
//! command injection that must stay inert; a canary file shows whether anything ran.
//!
//! 64 cases by default, `AVP_SHELL_CASES=N` for more. The shells must be installed (CI's
//! `.ci/run` installs zsh; dash and bash are in every Debian).

use super::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::Path;
use std::process::Command;

const SHELLS: [&str; 3] = ["dash", "bash", "zsh"];

/// Each tries to create `PWNED` in the current directory if the shell expands it.
const INJECTIONS: [&str; 7] = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    "\"; touch PWNED; \"",
    "\ntouch PWNED\n",
    "'\\''$(touch PWNED)'",
    "${x:=$(touch PWNED)}",
];

fn cases() -> u32 {
    std::env::var("AVP_SHELL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

/// The value of `K` after `shell` sources `file`, from its hex dump (so any byte survives).
fn sourced_value(shell: &str, dir: &Path) -> Vec<u8> {
    let output = Command::new(shell)
        .arg("-c")
        .arg(r#"set -a; . ./exported.env; printf %s "$K" | od -An -v -tx1"#)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {shell} (install it): {err}"));
    assert!(
        output.status.success(),
        "{shell} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .map(|hex| u8::from_str_radix(hex, 16).unwrap())
        .collect()
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    let bytes = || proptest::collection::vec(1u8.., 0..24);
    (bytes(), proptest::sample::select(&INJECTIONS[..]), bytes()).prop_map(
        |(before, injection, after)| {
            let mut value = before;
            value.extend_from_slice(injection.as_bytes());
            value.extend_from_slice(&after);
            value
        },
    )
}

#[test]
fn sourcing_an_export_yields_the_stored_bytes_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let name = SecretName::new("K").unwrap();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        ..Config::default()
    });
    runner
        .run(&value(), |value| {
            let mut file = Vec::new();
            write_entry(&mut file, &name, &value).unwrap();
            std::fs::write(dir.path().join("exported.env"), &file).unwrap();
            for shell in SHELLS {
                prop_assert_eq!(&sourced_value(shell, dir.path()), &value, "{}", shell);
                prop_assert!(
                    !dir.path().join("PWNED").exists(),
                    "{} ran a command from the export",
                    shell
                );
            }
            let entries = parse(&file, MAX).unwrap();
            prop_assert_eq!(entries.len(), 1);
            prop_assert_eq!(entries[0].value.expose_secret(), &value[..]);
            Ok(())
        })
        .unwrap();
}
