//! The client against tiny fake agents that misbehave on purpose: another protocol
//! version, silence, an oversized frame, a wrong answer. Each must give a clear typed
//! error quickly, never a hang or a huge allocation.

use avp_client::{AsyncClient, Client, Error, ErrorCode, PROTOCOL_VERSION};
use avp_protocol::{ErrorResponse, Request, Response, frame};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A one-connection fake agent running `behave` on the accepted stream.
struct Fake {
    _dir: TempDir,
    socket: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    fn start(behave: impl FnOnce(UnixStream) + Send + 'static) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            behave(stream);
        });
        Self {
            _dir: dir,
            socket,
            thread: Some(thread),
        }
    }

    /// Answers the client's `Hello` with `answer`, then waits for the client to leave.
    fn answering_hello(answer: Response) -> Self {
        Self::start(move |mut stream| {
            let hello: Request = frame::read_message(&mut stream).unwrap().unwrap();
            assert_eq!(
                hello,
                Request::Hello {
                    version: PROTOCOL_VERSION
                }
            );
            frame::write_message(&mut stream, &answer).unwrap();
            drain(&mut stream);
        })
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // Surface an assertion failure inside the fake agent.
            if !std::thread::panicking() {
                thread.join().unwrap();
            }
        }
    }
}

/// Reads until the client closes (or the read timeout ends the wait).
fn drain(stream: &mut UnixStream) {
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

fn mismatch_refusal() -> Response {
    Response::Error(ErrorResponse::new(
        ErrorCode::VersionMismatch,
        format!(
            "client speaks protocol version {PROTOCOL_VERSION}, this agent speaks 7: use an avp client and agent from the same release"
        ),
    ))
}

#[test]
fn an_agent_refusing_our_version_is_a_version_mismatch_naming_both() {
    let fake = Fake::answering_hello(mismatch_refusal());
    let err = Client::connect_to(&fake.socket).unwrap_err();
    assert!(
        matches!(
            err,
            Error::VersionMismatch {
                client: PROTOCOL_VERSION,
                agent: Some(7)
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("version {PROTOCOL_VERSION}")) && text.contains("version 7"),
        "{text}"
    );
    assert_eq!(err.code(), Some(ErrorCode::VersionMismatch));
}

#[test]
fn an_agent_answering_another_version_is_a_version_mismatch() {
    let fake = Fake::answering_hello(Response::Hello {
        version: PROTOCOL_VERSION + 1,
    });
    let err = Client::connect_to(&fake.socket).unwrap_err();
    assert!(
        matches!(err, Error::VersionMismatch { agent: Some(v), .. } if v == PROTOCOL_VERSION + 1),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_async_client_detects_a_version_mismatch_too() {
    let fake = Fake::answering_hello(mismatch_refusal());
    let err = AsyncClient::connect_to(&fake.socket).await.unwrap_err();
    assert!(
        matches!(err, Error::VersionMismatch { agent: Some(7), .. }),
        "{err:?}"
    );
    let fake = Fake::answering_hello(Response::Hello { version: 99 });
    let err = AsyncClient::connect_to(&fake.socket).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::VersionMismatch {
                agent: Some(99),
                ..
            }
        ),
        "{err:?}"
    );
}

/// An agent that reads the Hello and never answers.
fn silent() -> Fake {
    Fake::start(|mut stream| {
        let _: Option<Request> = frame::read_message(&mut stream).unwrap();
        drain(&mut stream);
    })
}

#[test]
fn a_silent_agent_times_out() {
    let fake = silent();
    let started = Instant::now();
    let err = Client::connect_with_timeout(&fake.socket, Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.is_unreachable());
    assert!(err.to_string().contains("did not answer"), "{err}");
}

#[tokio::test]
async fn a_silent_agent_times_out_async() {
    let fake = silent();
    let started = Instant::now();
    let err = AsyncClient::connect_with_timeout(&fake.socket, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_oversized_frame_is_refused_before_allocating() {
    let fake = Fake::start(|mut stream| {
        let _: Option<Request> = frame::read_message(&mut stream).unwrap();
        // A length prefix of 4 GiB - 1 and nothing else.
        stream.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        drain(&mut stream);
    });
    let err = Client::connect_to(&fake.socket).unwrap_err();
    assert!(
        matches!(err, Error::Protocol(avp_protocol::FrameError::TooLarge(_))),
        "{err:?}"
    );
    assert_eq!(err.code(), Some(ErrorCode::ProtocolError));
}

#[test]
fn a_wrong_answer_is_an_unexpected_response_and_the_next_call_is_refused() {
    let fake = Fake::start(|mut stream| {
        let _: Option<Request> = frame::read_message(&mut stream).unwrap();
        frame::write_message(
            &mut stream,
            &Response::Hello {
                version: PROTOCOL_VERSION,
            },
        )
        .unwrap();
        let status: Request = frame::read_message(&mut stream).unwrap().unwrap();
        assert_eq!(status, Request::Status);
        frame::write_message(&mut stream, &Response::Unlocked).unwrap();
        drain(&mut stream);
    });
    let mut client = Client::connect_to(&fake.socket).unwrap();
    let err = client.status().unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnexpectedResponse {
                expected: "STATUS",
                got: "Unlocked"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn an_agent_that_hangs_up_after_hello_is_disconnected() {
    let fake = Fake::start(|mut stream| {
        let _: Option<Request> = frame::read_message(&mut stream).unwrap();
        frame::write_message(
            &mut stream,
            &Response::Hello {
                version: PROTOCOL_VERSION,
            },
        )
        .unwrap();
    });
    let mut client = Client::connect_to(&fake.socket).unwrap();
    let err = client.discover().unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    // Later calls fail at once with the same clear error.
    let err = client.lock().unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
}
