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
fn a_workspace_whose_metadata_exceeds_a_frame_lists_and_runs() {
    let agent = TestAgent::start_initialized();
    assert_a_wide_workspace_lists_and_runs(&agent);
}
