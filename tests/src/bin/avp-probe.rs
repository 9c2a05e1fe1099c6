//! `avp-probe [--json] SOCKET`: the smallest AVP client, for tests that must run a client
//! under another identity (e.g. `setpriv --reuid=65534 … avp-probe SOCKET`). It connects,
//! sends `Hello` and prints what came back on one line: `hello`, `error <CODE>`, `closed`, or
//! `cannot connect: <reason>`.
//!
//! With `--json` it speaks the JSON-lines wire (PROTOCOL.md §12) and reads the answer as a
//! JSON client must (§12.1.2): a line if the agent knew the codec, else the bincode `Error`
//! frame of a connection refused before its first byte was read (printed the same way).

use avp_protocol::{PROTOCOL_VERSION, Request, Response, frame};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn main() {
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    let json = args.first().is_some_and(|a| a == "--json");
    if json {
        args.remove(0);
    }
    let Some(socket) = args.first() else {
        eprintln!("usage: avp-probe [--json] SOCKET");
        std::process::exit(2);
    };
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(err) => {
            println!("cannot connect: {err}");
            return;
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
    };
    // The agent may answer and close before reading anything: a failed write is not the
    // end of the story, the answer may already be waiting.
    if json {
        let _ = stream.write_all(&avp_protocol::json::request::encode_request(&hello));
        println!("{}", json_answer(&mut stream));
        return;
    }
    let _ = frame::write_message(&mut stream, &hello);
    println!("{}", bincode_answer(&mut stream));
}

fn bincode_answer(stream: &mut impl Read) -> String {
    match frame::read_message::<Response>(stream) {
        Ok(Some(Response::Hello { .. })) => "hello".into(),
        Ok(Some(Response::Error(err))) => format!("error {}", err.code),
        Ok(Some(other)) => format!("unexpected {}", other.kind()),
        Ok(None) | Err(_) => "closed".into(),
    }
}

fn json_answer(stream: &mut UnixStream) -> String {
    let mut first = [0u8; 1];
    if !matches!(stream.read(&mut first), Ok(1)) {
        return "closed".into();
    }
    if first[0] != b'{' {
        // Refused before the agent saw our first byte: a bincode frame (§12.1.2).
        return bincode_answer(&mut first.chain(stream));
    }
    let Some(rest) = avp_tests::json::read_line(stream) else {
        return "closed".into();
    };
    let line = [&first[..], &rest].concat();
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(&line) else {
        return "unexpected non-JSON line".into();
    };
    match (answer["ok"].as_bool(), answer["error"]["code"].as_str()) {
        (Some(true), _) => "hello".into(),
        (Some(false), Some(code)) => format!("error {code}"),
        _ => format!("unexpected {answer}"),
    }
}
