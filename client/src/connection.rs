//! One blocking connection to the agent: connect, the trust check, the `Hello` exchange, and one
//! request/response round trip at a time under a read and write timeout. Transport failures
//! become the [`Error`] a person can act on (no agent, agent gone, timeout, bad frame).
//!
//! The frame helpers of `avp-protocol` refuse any length prefix over 1 MiB before
//! allocating, so a hostile or broken agent cannot make the client allocate more.

use crate::calls::{self, Call};
use crate::error::{Error, Result};
use avp_protocol::{FrameError, Request, Response, frame};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a call waits for the agent before giving up. Long enough for an unlock at the
/// highest work factor plus the agent's maximum wrong-passphrase delay.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection that has completed the `Hello` exchange.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: UnixStream,
    socket: PathBuf,
    timeout: Duration,
    /// The agent's protocol version from its `Hello`.
    agent_version: u32,
    /// Set after a timeout or a bad frame: the stream may be mid-frame, so no later
    /// response could be trusted to answer the request before it.
    broken: bool,
}

impl Connection {
    /// Connects to `socket` and checks, before the first byte is sent, that it is our own
    /// agent (see `trust`); no `Hello` yet.
    fn connect(socket: &Path, timeout: Duration) -> Result<Self> {
        let stream = UnixStream::connect(socket).map_err(|source| Error::NoAgent {
            socket: socket.to_path_buf(),
            source,
        })?;
        crate::trust::check(socket, &stream)?;
        let mut conn = Self {
            stream,
            socket: socket.to_path_buf(),
            timeout,
            agent_version: 0,
            broken: false,
        };
        conn.set_timeout(timeout)?;
        Ok(conn)
    }

    /// Connects to `socket` and performs the `Hello` exchange.
    pub(crate) fn open(socket: &Path, timeout: Duration) -> Result<Self> {
        let mut conn = Self::connect(socket, timeout)?;
        conn.agent_version = calls::check_version(conn.run(calls::hello())?)?;
        Ok(conn)
    }

    /// Connects to `socket` and sends `Hello` and `requests` in one write (PROTOCOL.md
    /// §3.5: the agent answers them in order), then checks the `Hello` answer. The answers
    /// to `requests` are left for [`Connection::read_answer`], one per request, in order.
    /// The requests must be few and small: nothing is read until all are written.
    pub(crate) fn open_pipelined(
        socket: &Path,
        timeout: Duration,
        requests: &[&Request],
    ) -> Result<Self> {
        let mut conn = Self::connect(socket, timeout)?;
        let (hello, bytes) = calls::pipelined(requests)?;
        if let Err(err) = io::Write::write_all(&mut conn.stream, &bytes) {
            conn.broken = true;
            return Err(transport_error(err.into(), &conn.socket, conn.timeout));
        }
        conn.agent_version = calls::check_version(hello.finish(conn.read_answer()?)?)?;
        Ok(conn)
    }

    /// Reads the next answer of a pipelined request.
    pub(crate) fn read_answer(&mut self) -> Result<Response> {
        if self.broken {
            return Err(self.disconnected());
        }
        match frame::read_message::<Response>(&mut self.stream) {
            Ok(Some(response)) => Ok(response),
            Ok(None) => {
                self.broken = true;
                Err(self.disconnected())
            }
            Err(err) => {
                self.broken = true;
                Err(transport_error(err, &self.socket, self.timeout))
            }
        }
    }

    /// The socket this connection talks to.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// The agent's protocol version.
    pub(crate) fn agent_version(&self) -> u32 {
        self.agent_version
    }

    /// The read and write timeout of each call.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the read and write timeout of later calls.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        // A zero timeout would mean "block for ever" to the OS; make it the smallest wait.
        let timeout = timeout.max(Duration::from_millis(1));
        let io_err = |source| Error::Io {
            context: "cannot set the socket timeout".into(),
            source,
        };
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(io_err)?;
        self.stream
            .set_write_timeout(Some(timeout))
            .map_err(io_err)?;
        self.timeout = timeout;
        Ok(())
    }

    /// Sends the call's request and turns the answer into its typed result.
    pub(crate) fn run<T>(&mut self, call: Call<T>) -> Result<T> {
        let response = self.round_trip(&call.request)?;
        call.finish(response)
    }

    fn round_trip(&mut self, request: &Request) -> Result<Response> {
        if self.broken {
            return Err(self.disconnected());
        }
        if let Err(err) = frame::write_message(&mut self.stream, request) {
            self.broken = true;
            return Err(transport_error(err, &self.socket, self.timeout));
        }
        self.read_answer()
    }

    fn disconnected(&self) -> Error {
        Error::Disconnected {
            socket: self.socket.clone(),
        }
    }
}

/// Maps a frame error on an established connection to what the user can act on. Shared by
/// the blocking and the async connection.
pub(crate) fn transport_error(err: FrameError, socket: &Path, timeout: Duration) -> Error {
    match err {
        FrameError::Io(io) => match io.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout {
                socket: socket.to_path_buf(),
                after: timeout,
            },
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof => Error::Disconnected {
                socket: socket.to_path_buf(),
            },
            _ => Error::Io {
                context: format!("talking to the agent on {}", socket.display()),
                source: io,
            },
        },
        FrameError::Truncated => Error::Disconnected {
            socket: socket.to_path_buf(),
        },
        other => Error::Protocol(other),
    }
}
