//! A contributor who is not root can run the whole suite: a root-only test skips itself,
//! saying why, instead of failing. Checked by running this binary again, filtered to the
//! ignored `needs_root_probe` test, as a user who is not root (`nobody`, through `setpriv`,
//! when the suite runs as root as CI does; as ourselves otherwise).

use std::process::Command;

#[test]
#[ignore = "run in a child process, not as root, by a_root_only_test_skips_for_a_user_who_is_not_root"]
fn needs_root_probe() {
    avp_tests::require_root!("the probe of root_skip.rs");
    panic!(
        "a root-only test ran on past require_root! as uid {}",
        nix::unistd::geteuid()
    );
}

#[test]
fn a_root_only_test_skips_for_a_user_who_is_not_root() {
    let exe = std::env::current_exe().unwrap();
    let mut command = if avp_tests::sys::is_root() {
        let mut setpriv = Command::new("setpriv");
        setpriv
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe);
        setpriv
    } else {
        Command::new(&exe)
    };
    let out = command
        .args(["--ignored", "--exact", "--nocapture"])
        .arg(avp_tests::test_name(module_path!(), "needs_root_probe"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the root-only probe failed for a user who is not root:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the probe did not run (filter?):\n{stdout}"
    );
    assert!(
        stderr.contains("skipped: needs root: the probe of root_skip.rs"),
        "the skip does not say why:\n{stderr}"
    );
}
