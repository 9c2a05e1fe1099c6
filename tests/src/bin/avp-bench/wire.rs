//! The client side shared by every round-trip measurement, and the floor: a bare Unix-socket
//! echo server that answers each frame with a frame of the agent's response size, doing
//! nothing else (no decoding, no lookup, no audit).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Sends one request frame and reads one whole response frame; returns the elapsed time.
pub fn round_trip(stream: &mut UnixStream, request: &[u8], buf: &mut Vec<u8>) -> Duration {
    let started = Instant::now();
    stream.write_all(request).expect("write request");
    read_frame(stream, buf);
    started.elapsed()
}

/// Reads one length-prefixed frame into `buf`.
pub fn read_frame(stream: &mut UnixStream, buf: &mut Vec<u8>) {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).expect("read header");
    let len = u32::from_be_bytes(header) as usize;
    buf.resize(len, 0);
    stream.read_exact(buf).expect("read payload");
}

/// The floor server: thread per connection, blocking reads, a canned reply of
/// `reply_len` payload bytes per request frame. Runs until killed.
pub fn serve_echo(path: &Path, reply_len: usize) -> ! {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind the echo socket");
    let mut reply = (reply_len as u32).to_be_bytes().to_vec();
    reply.resize(4 + reply_len, 0x5a);
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let reply = reply.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            loop {
                let mut header = [0u8; 4];
                if stream.read_exact(&mut header).is_err() {
                    return;
                }
                buf.resize(u32::from_be_bytes(header) as usize, 0);
                if stream.read_exact(&mut buf).is_err() || stream.write_all(&reply).is_err() {
                    return;
                }
            }
        });
    }
    std::process::exit(0)
}

/// An echo server in a child process (like the agent, so both pay the same scheduling).
#[derive(Debug)]
pub struct EchoServer {
    child: std::process::Child,
    /// Its socket.
    pub path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl EchoServer {
    /// Starts `avp-bench --echo-server` answering `reply_len`-byte payloads.
    pub fn start(reply_len: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("echo.sock");
        let child = std::process::Command::new(std::env::current_exe().expect("self"))
            .arg("--echo-server")
            .arg(&path)
            .arg("--reply-len")
            .arg(reply_len.to_string())
            .spawn()
            .expect("start the echo server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&path).is_err() {
            assert!(Instant::now() < deadline, "echo server did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        Self {
            child,
            path,
            _dir: dir,
        }
    }

    /// A connection to it.
    pub fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.path).expect("connect to echo")
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
