//! A JSON-lines connection (PROTOCOL.md §12): the connection's first byte was `{`.
//!
//! Only the codec differs from a bincode connection: each line is translated by
//! `avp_protocol::json` into the same `Request` and handed to the same `cmd::dispatch`
//! (validation, sessions, audit), and the same `Response` is written back as a line. The
//! waits are the bincode path's: the idle timeout between lines, the frame timeout once a
//! line has begun, the write timeout on answers; the connection's registration moves through
//! idle → reading → busy as a frame's does, so the cap evicts a slow JSON sender first too.
//!
//! Memory and waits are the bincode path's, in `reader`: one zeroizing buffer that grows
//! only as far as a line needs, never past 1 MiB (a longer line is refused as soon as the
//! limit is passed), each line wiped as soon as it is decoded.

use super::reader::Wire;
use super::{Codec, Connection, Reply, Turn, error, greeting};
use avp_protocol::json as wire;
use avp_protocol::{ErrorCode, Request, Response};
use nix::sys::socket::{MsgFlags, recv};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use zeroize::Zeroizing;

pub use avp_protocol::json::FIRST_BYTE;

const TOO_LONG: &str = "the line exceeds the 1 MiB limit; closing the connection";

/// JSON lines (PROTOCOL.md §12): `HELLO` optional.
pub(super) const CODEC: Codec = Codec {
    wire: Wire::Lines,
    turn: line_turn,
    encode: |response| Some(wire::encode_response(response)),
    too_large: || wire::encode_error(ErrorCode::ProtocolError, TOO_LONG),
};

/// One line. HELLO is optional, and checked only as the first line (§12.3); later it is the
/// dispatcher's PROTOCOL_ERROR, as on the bincode wire. A bad field is answered and the
/// connection goes on; an unreadable line is answered and closes it.
fn line_turn(conn: &Connection, line: &[u8], first: bool) -> Turn {
    match wire::decode_request(line) {
        Ok(Request::Hello { version }) if first => Turn::Reply(greeting(version)),
        Ok(request) => Turn::Request(request),
        Err(err) => {
            tracing::debug!(code = %err.code(), pid = ?conn.peer.pid, "bad JSON line");
            let answer = error(err.code(), err.message());
            Turn::Reply(if err.closes() {
                Reply::close(answer)
            } else {
                Reply::go_on(answer)
            })
        }
    }
}

/// The answer refusing a connection before its first request (PROTOCOL.md §12.1.2): a JSON
/// line when the client's first byte has already arrived and is `{`, else `None` (the caller
/// sends the bincode frame).
pub fn refusal(stream: &UnixStream, response: &Response) -> Option<Zeroizing<Vec<u8>>> {
    let mut byte = [0u8; 1];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    match recv(stream.as_raw_fd(), &mut byte, flags) {
        Ok(1) if byte[0] == FIRST_BYTE => Some(wire::encode_response(response)),
        _ => None,
    }
}
