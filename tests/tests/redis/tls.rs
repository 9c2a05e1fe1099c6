//! `rediss://`: the agent talks TLS to Redis, verifies the server's certificate against the
//! system roots (here a test CA named by `SSL_CERT_FILE`, which rustls-native-certs honours)
//! and refuses a server it cannot verify. Certificates are made with the `openssl` CLI.

use avp_protocol::{ErrorCode, Response};
use avp_tests::redis::{RedisServer, agent_args, free_port};
use avp_tests::wire::code_of;
use avp_tests::{AgentOptions, TestAgent};
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (install it: .ci/run does)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for `localhost` signed by it, and an unrelated CA.
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (key, cert, subject) in [
        ("ca.key", "ca.pem", "/CN=avp test CA"),
        ("other.key", "other.pem", "/CN=unrelated CA"),
    ] {
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend(["-keyout", key, "-out", cert, "-days", "2", "-subj", subject]);
        openssl(dir, &ca);
    }
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr);
    std::fs::write(dir.join("ext"), "subjectAltName=DNS:localhost\n").expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    );
}

#[test]
fn rediss_verifies_the_server_and_serves_over_tls() {
    let certs = tempfile::tempdir().expect("temp dir");
    certificates(certs.path());
    let file = |name: &str| certs.path().join(name).display().to_string();
    let port = free_port();
    let _server = RedisServer::start_with(
        0,
        vec![
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            file("server.pem"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
        ],
    );
    let url = format!("rediss://localhost:{port}");

    let trusted = TestAgent::start_with(AgentOptions {
        args: agent_args(&url),
        env: vec![("SSL_CERT_FILE".into(), file("ca.pem"))],
        ..AgentOptions::default()
    });
    trusted.init();
    let mut conn = trusted.connect();
    let s = conn.session("w");
    assert!(matches!(
        conn.store(&s, "K", b"over tls"),
        Response::Stored(_)
    ));
    assert_eq!(conn.value(&s, "K"), Ok(b"over tls".to_vec()));
    assert_eq!(conn.status().vault_location, url);

    // Trusting another CA only, the server's certificate does not verify: refused.
    let untrusting = TestAgent::start_with(AgentOptions {
        args: agent_args(&url),
        env: vec![("SSL_CERT_FILE".into(), file("other.pem"))],
        ..AgentOptions::default()
    });
    let refused = untrusting.unlock();
    assert_eq!(
        code_of(&refused),
        Some(ErrorCode::BackendUnavailable),
        "{refused:?}"
    );
    if let Response::Error(e) = &refused {
        assert!(
            e.message.contains("does not trust (UnknownIssuer)"),
            "{}\n{}",
            e.message,
            untrusting.logs()
        );
    }
}
