//! `avp-squatter SOCKET`: a fake agent for the client-trust tests, run as another uid
//! (`setpriv --reuid=1002 … avp-squatter SOCKET`). It binds SOCKET, prints `listening`,
//! then serves one connection after another like a hostile agent would: it answers `Hello`
//! with our protocol version and every other request with an error, and when the client
//! hangs up prints `received <N> bytes` — everything the client sent it, which a trusting
//! client would have filled with a passphrase or a value.

use avp_protocol::{ErrorCode, ErrorResponse, PROTOCOL_VERSION, Request, Response, frame};
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

/// Counts the bytes read through it.
struct Counting<'a> {
    stream: &'a UnixStream,
    bytes: usize,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&mut &*self.stream).read(buf)?;
        self.bytes += n;
        Ok(n)
    }
}

fn serve(stream: &UnixStream) -> usize {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let mut reader = Counting { stream, bytes: 0 };
    while let Ok(Some(request)) = frame::read_message::<Request>(&mut reader) {
        let answer = match request {
            Request::Hello { .. } => Response::Hello {
                version: PROTOCOL_VERSION,
            },
            _ => Response::Error(ErrorResponse::new(ErrorCode::BackendError, "squatter")),
        };
        if frame::write_message(&mut &*stream, &answer).is_err() {
            break;
        }
    }
    // Whatever a partial frame held counts too.
    let mut rest = [0u8; 4096];
    while matches!(reader.read(&mut rest), Ok(n) if n > 0) {}
    reader.bytes
}

fn main() {
    let Some(socket) = std::env::args_os().nth(1) else {
        eprintln!("usage: avp-squatter SOCKET");
        std::process::exit(2);
    };
    let listener = UnixListener::bind(&socket).expect("bind the squatted socket");
    let mut out = io::stdout();
    let _ = writeln!(out, "listening");
    let _ = out.flush();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let bytes = serve(&stream);
        let _ = writeln!(out, "received {bytes} bytes");
        let _ = out.flush();
    }
}
