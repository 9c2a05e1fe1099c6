//! `avp run`: the command sees the workspace's secrets in its environment (never in its
//! argv) and avp exits with the command's status.

use avp_tests::TestAgent;
use avp_tests::cli::{assert_a_wide_workspace_lists_and_runs, avp, code, run, set, set_in, text};

#[test]
fn the_command_sees_the_secrets() {
    let agent = TestAgent::start_initialized();
    set(&agent, "DB_PASSWORD", b"s3cret with spaces\nand a newline");
    set(&agent, "API_TOKEN", b"tok");
    let out = run(
        &agent,
        &[
            "run",
            "--",
            "sh",
            "-c",
            r#"printf '%s|%s' "$DB_PASSWORD" "$API_TOKEN""#,
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "s3cret with spaces\nand a newline|tok");
}

#[test]
fn the_exit_status_is_the_commands() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"1");
    for status in [0, 1, 7, 42] {
        let script = format!("exit {status}");
        let out = run(&agent, &["run", "--", "sh", "-c", &script], b"");
        assert_eq!(code(&out), status);
    }
    // Without `--` too, when the command has no flags of its own.
    avp(&agent).args(["run", "false"]).assert().code(1);
}

#[test]
fn only_picks_names_and_the_environment_is_otherwise_inherited() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"a");
    set(&agent, "B", b"b");
    set(&agent, "C", b"c");
    let out = avp(&agent)
        .env("INHERITED", "yes")
        .args(["run", "--only", "A", "--only", "C", "--", "sh", "-c"])
        .arg(r#"printf '%s,%s,%s,%s' "${A-unset}" "${B-unset}" "${C-unset}" "$INHERITED""#)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a,unset,c,yes");
    let out = run(&agent, &["run", "--only", "MISSING", "--", "true"], b"");
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("(SECRET_NOT_FOUND)"));
}

#[test]
fn the_workspace_flag_selects_the_secrets() {
    let agent = TestAgent::start_initialized();
    set(&agent, "WHERE", b"default");
    set_in(&agent, "prod", "WHERE", b"prod");
    let out = run(
        &agent,
        &[
            "-w",
            "prod",
            "run",
            "--",
            "sh",
            "-c",
            "printf %s \"$WHERE\"",
        ],
        b"",
    );
    assert_eq!(text(&out.stdout), "prod");
}

#[test]
fn unusable_names_and_values_are_skipped_with_a_warning() {
    let agent = TestAgent::start_initialized();
    set(&agent, "GOOD", b"ok");
    set(&agent, "dotted.name", b"x");
    set(&agent, "NUL_VALUE", b"a\x00b");
    let out = run(
        &agent,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "printf %s \"$GOOD\"; env | grep -c NUL_VALUE || true",
        ],
        b"",
    );
    assert_eq!(code(&out), 0);
    assert_eq!(text(&out.stdout), "ok0\n");
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("avp: warning: skipping dotted.name: not a valid environment variable name"),
        "{stderr}"
    );
    assert!(
        stderr.contains("avp: warning: skipping NUL_VALUE: its value contains a NUL byte"),
        "{stderr}"
    );
}

#[test]
fn non_utf8_values_pass_as_raw_bytes() {
    let agent = TestAgent::start_initialized();
    set(&agent, "RAW", b"\xff\xfe\x80ok");
    let out = run(
        &agent,
        &["run", "--", "sh", "-c", "printf %s \"$RAW\""],
        b"",
    );
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout, b"\xff\xfe\x80ok");
}

#[test]
fn values_never_appear_in_the_commands_argv() {
    let agent = TestAgent::start_initialized();
    set(&agent, "MARKER_SECRET", b"MARKER-value-1234");
    // The shell prints its own command line: the value must not be in it.
    let out = run(
        &agent,
        &["run", "--", "sh", "-c", "tr '\\0' ' ' < /proc/$$/cmdline"],
        b"",
    );
    assert_eq!(code(&out), 0);
    let cmdline = text(&out.stdout);
    assert!(cmdline.starts_with("sh -c"), "{cmdline}");
    assert!(!cmdline.contains("MARKER-value"), "{cmdline}");
}

#[test]
fn a_missing_command_exits_127() {
    let agent = TestAgent::start_initialized();
    let out = run(&agent, &["run", "--", "/nonexistent/program"], b"");
    assert_eq!(code(&out), 127);
    assert!(text(&out.stderr).starts_with("avp: cannot run /nonexistent/program: "));
}

#[test]
fn variables_that_change_loaded_code_are_skipped_unless_named_with_only() {
    let agent = TestAgent::start_initialized();
    set(&agent, "LD_PRELOAD", b"/nonexistent/evil.so");
    set(&agent, "PATH", b"/nonexistent-evil-bin");
    set(&agent, "GOOD", b"ok");
    let script = r#"printf '%s|%s|%s' "${LD_PRELOAD-unset}" "$PATH" "$GOOD""#;
    let out = run(&agent, &["run", "--", "/bin/sh", "-c", script], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let inherited = std::env::var("PATH").unwrap_or_default();
    assert_eq!(text(&out.stdout), format!("unset|{inherited}|ok"));
    let stderr = text(&out.stderr);
    for name in ["LD_PRELOAD", "PATH"] {
        assert!(
            stderr.contains(&format!(
                "avp: warning: skipping {name}: it changes what code the command loads; \
                 pass it with `--only {name}` if you mean it"
            )),
            "{stderr}"
        );
    }
    assert!(!stderr.contains("GOOD"), "{stderr}");

    // Named explicitly, they are the user's choice.
    let out = run(
        &agent,
        &[
            "run",
            "--only",
            "LD_PRELOAD",
            "--only",
            "PATH",
            "--",
            "/bin/sh",
            "-c",
            script,
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "/nonexistent/evil.so|/nonexistent-evil-bin|"
    );
    assert!(
        !text(&out.stderr).contains("skipping"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_command_inherits_only_standard_input_output_and_error() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"1");
    // Probe each number with `[ -L ]` (a stat, no descriptor of its own), unlike `ls` or a
    // glob, which open the directory they list.
    let script = r#"n=0; while [ $n -lt 1024 ]; do [ -L /proc/$$/fd/$n ] && printf '%s ' $n; n=$((n+1)); done"#;
    let out = run(&agent, &["run", "--", "/bin/sh", "-c", script], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let expected: String = [0, 1, 2]
        .into_iter()
        .chain(leaked_by_this_process())
        .map(|fd| format!("{fd} "))
        .collect();
    assert_eq!(text(&out.stdout), expected);
}

/// Descriptors above 2 that this test process itself passes to every child (open without
/// close-on-exec): none in CI, but a sandbox may hand some down. avp inherits them like any
/// program and is not the one to close them; anything beyond them would be avp's leak.
fn leaked_by_this_process() -> Vec<u32> {
    const O_CLOEXEC_OCTAL: u32 = 0o2_000_000;
    let mut fds: Vec<u32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .filter(|fd| {
            let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
                return false; // the directory listing's own descriptor, closed by now
            };
            info.lines()
                .find_map(|line| line.strip_prefix("flags:"))
                .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
                .is_some_and(|flags| flags & O_CLOEXEC_OCTAL == 0)
        })
        .collect();
    fds.sort_unstable();
    fds
}

#[test]
fn a_workspace_whose_metadata_exceeds_a_frame_lists_and_runs() {
    let agent = TestAgent::start_initialized();
    assert_a_wide_workspace_lists_and_runs(&agent);
}
