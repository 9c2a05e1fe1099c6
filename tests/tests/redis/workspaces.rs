//! `avp workspaces` on a Redis-backed vault: Redis holds only HMAC tags of the workspace
//! ids, so the agent names each workspace from its decrypted records — and one agent lists
//! what another stored. With Redis down it fails with `BACKEND_UNAVAILABLE` rather than
//! listing nothing.

use super::agent_on;
use avp_tests::cli::{avp, code, init, passphrase_line, run, set, set_in, text};
use avp_tests::redis::RedisServer;

#[test]
fn workspaces_lists_what_every_agent_stored() {
    let mut server = RedisServer::start_tcp();
    let machine_a = agent_on(&server);
    let machine_b = agent_on(&server);
    init(&machine_a);
    avp(&machine_b)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .assert()
        .success();
    set(&machine_a, "A", b"1");
    set_in(&machine_a, "team/prod", "B", b"2");
    set_in(&machine_b, "team/prod", "C", b"3");
    set_in(&machine_b, "gone", "D", b"4");
    avp(&machine_a)
        .args(["-w", "gone", "rm", "D"])
        .assert()
        .success();
    for machine in [&machine_a, &machine_b] {
        avp(machine)
            .arg("workspaces")
            .assert()
            .success()
            .stdout("WORKSPACE  SECRETS\ndefault    1\nteam/prod  2\n");
    }
    let keys = server.keys().join("\n");
    assert!(
        !keys.contains("team/prod") && !keys.contains("default"),
        "{keys}"
    );

    server.kill();
    let down = run(&machine_a, &["workspaces"], b"");
    assert_eq!(code(&down), 1, "{}", text(&down.stdout));
    assert!(
        text(&down.stderr).contains("(BACKEND_UNAVAILABLE)"),
        "{}",
        text(&down.stderr)
    );
}
