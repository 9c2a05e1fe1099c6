//! `import` and `export`: dotenv and JSON round trips, all-or-nothing imports that name
//! the bad line, and export files created 0600.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, get, get_in, run, set, text};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const DOTENV: &str = r#"# A dotenv file the way people write them
export PLAIN=value
SPACED = spaced value   # a comment
EQUALS=a=b=c
HASH_INSIDE=abc#def
SINGLE='literal $HOME \n # not a comment'
DOUBLE="line1\nline2 \"quoted\" back\\slash"
MULTI="first
second"
EMPTY=
QUOTES_MIX='he said "it'"'"
"#;

fn expected() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("PLAIN", b"value"),
        ("SPACED", b"spaced value"),
        ("EQUALS", b"a=b=c"),
        ("HASH_INSIDE", b"abc#def"),
        ("SINGLE", b"literal $HOME \\n # not a comment"),
        ("DOUBLE", b"line1\nline2 \"quoted\" back\\slash"),
        ("MULTI", b"first\nsecond"),
        ("EMPTY", b""),
    ]
}

fn write(dir: &Path, name: &str, content: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_owned()
}

fn names(agent: &TestAgent, workspace: &str) -> Vec<String> {
    let out = run(agent, &["--json", "-w", workspace, "ls"], b"");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_dotenv_file_imports_with_quotes_comments_and_escapes() {
    let agent = TestAgent::start_initialized();
    let dir = tempfile::tempdir().unwrap();
    // QUOTES_MIX is malformed on purpose in DOTENV; import the valid part here.
    let valid: String = DOTENV
        .lines()
        .filter(|l| !l.starts_with("QUOTES_MIX"))
        .collect::<Vec<_>>()
        .join("\n");
    let file = write(dir.path(), "app.env", valid.as_bytes());
    avp(&agent)
        .args(["import", &file, "--format", "dotenv"])
        .assert()
        .success()
        .stdout("imported 8 secret(s) into workspace default\n");
    for (name, value) in expected() {
        assert_eq!(get(&agent, name), value, "{name}");
    }
}

#[test]
fn a_malformed_import_imports_nothing_and_names_the_line() {
    let agent = TestAgent::start_initialized();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bad.env", DOTENV.as_bytes());
    let out = run(&agent, &["import", &file], b"");
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        format!(
            "avp: {file}, line 11: unexpected text after the closing quote (INVALID_REQUEST) — fix the file and import it again; nothing was imported\n"
        )
    );
    assert!(names(&agent, "default").is_empty(), "nothing was imported");

    let file = write(dir.path(), "badname.env", b"GOOD=1\nALSO_GOOD=2\n3BAD=3\n");
    let out = run(&agent, &["import", &file], b"");
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 3: invalid secret name"), "{stderr}");
    assert!(stderr.contains("(INVALID_NAME)"), "{stderr}");
    assert!(names(&agent, "default").is_empty());

    let file = write(dir.path(), "unterminated.env", b"A=1\nB=\"open\nC=3\n");
    let out = run(&agent, &["import", &file], b"");
    assert!(
        text(&out.stderr).contains("line 2: unterminated double quote"),
        "{}",
        text(&out.stderr)
    );

    let big = format!("A=1\nB={}\n", "x".repeat(65_537));
    let file = write(dir.path(), "big.env", big.as_bytes());
    let out = run(&agent, &["import", &file], b"");
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("line 2: value larger than the limit (VALUE_TOO_LARGE)"));

    let file = write(
        dir.path(),
        "bad.json",
        b"{\n  \"A\": \"1\",\n  \"B\": 42\n}\n",
    );
    let out = run(&agent, &["import", &file, "--format", "json"], b"");
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 3: a value must be a string"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("42"),
        "the file's values are never quoted: {stderr}"
    );
    assert!(names(&agent, "default").is_empty());

    let out = run(&agent, &["import", "/nonexistent/file.env"], b"");
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).starts_with("avp: cannot read /nonexistent/file.env: "));
}

#[test]
fn dotenv_export_then_import_round_trips_tricky_values() {
    let agent = TestAgent::start_initialized();
    let tricky: Vec<(&str, &[u8])> = vec![
        ("SINGLE_QUOTE", b"it's"),
        ("DOUBLE_QUOTE", b"say \"hi\""),
        ("BOTH", b"'\"' mixed \"'\""),
        ("HASH", b"# not a comment #"),
        ("EQUALS", b"a=b==c"),
        ("NEWLINES", b"line1\nline2\r\nline3\n"),
        ("BACKSLASHES", b"C:\\path\\n\\\\"),
        ("SPACES", b"  padded  "),
        ("DOLLAR", b"$HOME ${PATH}"),
        ("BINARY", b"\xff\xfe\x01'\n"),
        ("INJECTION", b"it's $(touch PWNED) `touch PWNED`"),
        ("EMPTY", b""),
    ];
    for (name, value) in &tricky {
        set(&agent, name, value);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.env");
    avp(&agent)
        .args(["export", "--format", "dotenv", "-o", file.to_str().unwrap()])
        .assert()
        .success()
        .stdout("")
        .stderr(format!("exported 12 secret(s) to {}\n", file.display()));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    avp(&agent)
        .args(["-w", "copy", "import", file.to_str().unwrap()])
        .assert()
        .success();
    for (name, value) in &tricky {
        assert_eq!(get_in(&agent, "copy", name), *value, "{name}");
    }
    // Exporting to stdout gives the same bytes as the file.
    let out = run(&agent, &["export"], b"");
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout, std::fs::read(&file).unwrap());
}

/// Stores `FINE` and `name` = `value`, then checks that a dotenv export to a file is refused
/// with `stderr` (exit 1) and writes nothing. Returns the agent for further checks.
fn assert_dotenv_export_refused(name: &str, value: &[u8], stderr: &str) -> TestAgent {
    let agent = TestAgent::start_initialized();
    set(&agent, "FINE", b"ok");
    set(&agent, name, value);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.env");
    let out = run(
        &agent,
        &["export", "--format", "dotenv", "-o", file.to_str().unwrap()],
        b"",
    );
    assert_eq!(code(&out), 1);
    assert_eq!(text(&out.stderr), stderr);
    assert!(!file.exists(), "nothing is written");
    agent
}

#[test]
fn a_value_with_a_nul_byte_is_not_exported_as_dotenv() {
    let agent = assert_dotenv_export_refused(
        "WITH_NUL",
        b"secret\x00part",
        "avp: `WITH_NUL` holds a NUL byte, which a dotenv file cannot carry (INVALID_REQUEST) \
         — export with `--format json`, which keeps any name and any bytes; nothing was \
         exported\n",
    );
    let out = run(&agent, &["export"], b"");
    assert_eq!(code(&out), 1);
    assert!(out.stdout.is_empty());
}

#[test]
fn a_name_that_is_not_a_shell_variable_is_not_exported_as_dotenv() {
    // `db.url='x'` is not an assignment to a shell: `set -a; . ./file` would look up and run
    // a command named `db.url=x` (a path, when the value holds a `/`).
    let agent = assert_dotenv_export_refused(
        "db.url",
        b"./payload",
        "avp: `db.url` is not a shell variable name, so a dotenv file cannot carry it \
         (INVALID_REQUEST) — export with `--format json`, which keeps any name and any bytes; \
         nothing was exported\n",
    );
    let out = run(&agent, &["export", "--format", "json"], b"");
    assert_eq!(code(&out), 0, "JSON keeps it");
}

#[test]
fn json_export_then_import_round_trips_binary_values() {
    let agent = TestAgent::start_initialized();
    set(&agent, "TEXT", b"quote\" newline\n tab\t unicode \xc3\xa9");
    set(&agent, "BINARY", b"\x00\xff\x80");
    let out = run(&agent, &["export", "--format", "json"], b"");
    assert_eq!(code(&out), 0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["TEXT"], "quote\" newline\n tab\t unicode é");
    assert_eq!(
        doc["BINARY"],
        serde_json::json!({"value": "AP+A", "encoding": "base64"})
    );
    avp(&agent)
        .args(["-w", "copy", "import", "-", "--format", "json"])
        .write_stdin(out.stdout)
        .assert()
        .success()
        .stdout("imported 2 secret(s) into workspace copy\n");
    assert_eq!(
        get_in(&agent, "copy", "TEXT"),
        "quote\" newline\n tab\t unicode é".as_bytes()
    );
    assert_eq!(get_in(&agent, "copy", "BINARY"), b"\x00\xff\x80");
}

#[test]
fn an_existing_export_file_is_truncated_and_made_private() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"1");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("existing.env");
    std::fs::write(
        &file,
        "OLD CONTENT THAT IS LONGER THAN THE EXPORT\n".repeat(10),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    avp(&agent)
        .args(["export", "-o", file.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(std::fs::read(&file).unwrap(), b"A='1'\n");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn later_duplicates_win_and_labels_are_kept() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args(["set", "A", "old", "--label", "keep=me"])
        .assert()
        .success();
    avp(&agent)
        .args(["import", "-"])
        .write_stdin("A=first\nA=second\n")
        .assert()
        .success()
        .stdout("imported 1 secret(s) into workspace default\n");
    assert_eq!(get(&agent, "A"), b"second");
    assert!(text(&run(&agent, &["ls"], b"").stdout).contains("keep=me"));
}

/// A pipe has no stable size: `import /dev/stdin` fed by a pipe, and `import <(…)` (a
/// pipe behind /dev/fd), are read to their end, not refused as "changed while read".
#[test]
fn pipes_and_process_substitution_import() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args(["import", "/dev/stdin"])
        .write_stdin("P=1\n")
        .assert()
        .success()
        .stdout("imported 1 secret(s) into workspace default\n");
    assert_eq!(get(&agent, "P"), b"1");
    let out = std::process::Command::new("bash")
        .env_clear()
        .env("AVP_SOCK", &agent.socket)
        .env("AVP", avp_tests::avp_bin())
        .args(["-c", r#""$AVP" import <(printf 'Q=2\n')"#])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(get(&agent, "Q"), b"2");
}
