"""The client trusts only its own agent (PROTOCOL.md §2.3): before the first byte it checks
that the socket's directory is its own and private, and that the process serving the socket
runs as its uid (SO_PEERCRED). The peer check runs as root against the Rust squatter
(`target/debug/avp-squatter`, a fake agent) started as uid 1002, like
tests/tests/client/trust.rs; it reports how many bytes each connection sent it."""

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

import avp_agent
import avp_agent.aio
from agent import REPO

SQUATTER_UID = 1002


def _refused_for_mode(path, mode):
    with pytest.raises(avp_agent.UntrustedSocketError) as info:
        avp_agent.Client(path)
    err = info.value
    assert err.reason == "directory_writable"
    assert f"which group or others can write (mode {mode:04o})" in str(err)
    assert "nothing was sent" in str(err)
    return err


def test_a_socket_directory_others_can_write_is_refused(shared_agent):
    run_dir = os.path.dirname(shared_agent.socket)
    try:
        for mode in (0o777, 0o770, 0o1733, 0o702):
            os.chmod(run_dir, mode)
            _refused_for_mode(shared_agent.socket, mode)
            with pytest.raises(avp_agent.UntrustedSocketError):
                asyncio.run(avp_agent.aio.Client.connect(shared_agent.socket))
    finally:
        os.chmod(run_dir, 0o700)
    with shared_agent.client() as c:  # private again: served as before
        assert c.status().state == "unlocked"


def test_nothing_is_sent_to_a_socket_in_a_writable_directory():
    base = tempfile.mkdtemp(prefix="avp-py-trust-")
    try:
        os.chmod(base, 0o777)
        path = os.path.join(base, "agent.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        _refused_for_mode(path, 0o777)
        conn, _ = listener.accept()
        conn.settimeout(10)
        assert conn.recv(1) == b"", "the client sent bytes before the checks"
        conn.close()
        listener.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


class Squatter:
    """The Rust fake agent run as SQUATTER_UID in a directory that user owns, like a squatted
    /tmp/avp-$UID."""

    def __init__(self) -> None:
        program_src = os.environ.get("AVP_SQUATTER_BIN") or str(REPO / "target/debug/avp-squatter")
        if not os.path.isfile(program_src):
            pytest.fail(f"no {program_src}: build it with `cargo build -p avp-tests --bins`")
        if shutil.which("setpriv") is None:
            pytest.fail("setpriv is missing: apt-get install util-linux")
        self.base = tempfile.mkdtemp(prefix="avp-py-squat-")
        os.chmod(self.base, 0o711)  # the other user must reach its directory and the program
        program = os.path.join(self.base, "avp-squatter")
        shutil.copy(program_src, program)
        os.chmod(program, 0o755)
        self.dir = os.path.join(self.base, "avp-squatted")
        os.mkdir(self.dir)
        os.chown(self.dir, SQUATTER_UID, SQUATTER_UID)
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "agent.sock")
        self.process = subprocess.Popen(
            ["setpriv", f"--reuid={SQUATTER_UID}", f"--regid={SQUATTER_UID}", "--clear-groups", program, self.socket],
            stdout=subprocess.PIPE,
        )
        assert self.next_line() == "listening"

    def next_line(self) -> str:
        return self.process.stdout.readline().decode().strip()

    def disguise_directory(self) -> None:
        """Hands the directory back to root, 0700: only the peer check can tell now."""
        os.chown(self.dir, 0, 0)
        os.chmod(self.dir, 0o700)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def squatter():
    if os.geteuid() != 0:
        pytest.skip("skipped: needs root: it runs a fake agent as another uid")
    s = Squatter()
    yield s
    s.stop()


def test_a_squatted_directory_gets_nothing(squatter):
    with pytest.raises(avp_agent.UntrustedSocketError) as info:
        avp_agent.Client(squatter.socket)
    assert info.value.reason == "directory_owner"
    assert f"owned by uid {SQUATTER_UID}, not you (uid 0)" in str(info.value)
    assert squatter.next_line() == "received 0 bytes"


def test_a_socket_served_by_another_uid_gets_nothing(squatter, monkeypatch):
    squatter.disguise_directory()
    expected = f"the socket {squatter.socket} is served by uid {SQUATTER_UID}, not you (uid 0)"

    with pytest.raises(avp_agent.UntrustedSocketError) as info:
        avp_agent.Client(squatter.socket)
    assert info.value.reason == "peer_uid" and expected in str(info.value)
    assert squatter.next_line() == "received 0 bytes", "sync client"

    with pytest.raises(avp_agent.UntrustedSocketError):
        asyncio.run(avp_agent.aio.Client.connect(squatter.socket))
    assert squatter.next_line() == "received 0 bytes", "asyncio client"

    # get_secret's agent source, chosen by AVP_SOCK as get_secret chooses it.
    monkeypatch.setenv("AVP_SOCK", squatter.socket)
    monkeypatch.delenv("AVP_SOURCE", raising=False)
    with pytest.raises(avp_agent.UntrustedSocketError):
        avp_agent.get_secret("DB_PASSWORD")
    assert squatter.next_line() == "received 0 bytes", "get_secret"
