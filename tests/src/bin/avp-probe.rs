//! `avp-probe SOCKET`: the smallest AVP client, for tests that must run a client under
//! another identity (e.g. `setpriv --reuid=65534 … avp-probe SOCKET`). It connects, sends
//! `Hello` and prints what came back on one line: `hello`, `error <CODE>`, `closed`, or
//! `cannot connect: <reason>`.

use avp_protocol::{PROTOCOL_VERSION, Request, Response, frame};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn main() {
    let Some(socket) = std::env::args_os().nth(1) else {
        eprintln!("usage: avp-probe SOCKET");
        std::process::exit(2);
    };
    let mut stream = match UnixStream::connect(&socket) {
        Ok(stream) => stream,
        Err(err) => {
            println!("cannot connect: {err}");
            return;
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    // The agent may answer and close before reading anything: a failed write is not the
    // end of the story, the answer may already be waiting.
    let _ = frame::write_message(
        &mut stream,
        &Request::Hello {
            version: PROTOCOL_VERSION,
        },
    );
    match frame::read_message::<Response>(&mut stream) {
        Ok(Some(Response::Hello { .. })) => println!("hello"),
        Ok(Some(Response::Error(err))) => println!("error {}", err.code),
        Ok(Some(other)) => println!("unexpected {}", other.kind()),
        Ok(None) | Err(_) => println!("closed"),
    }
}
