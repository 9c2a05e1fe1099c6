"""A real ``avp-agent`` for the tests: started on a socket in a fresh temporary directory,
killed at the end. The binary is ``AVP_AGENT_BIN`` or the repository's
``target/debug/avp-agent`` (build it with ``cargo build -p avp-agent``)."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import avp_agent

REPO = Path(__file__).resolve().parents[3]
PASSPHRASE = b"correct horse battery staple"
WORK_FACTOR = 10  # the smallest scrypt cost the agent accepts: fast tests


def agent_bin() -> str:
    explicit = os.environ.get("AVP_AGENT_BIN")
    path = Path(explicit) if explicit else REPO / "target" / "debug" / "avp-agent"
    if not path.is_file():
        raise RuntimeError(
            f"no agent binary at {path}: build it with `cargo build -p avp-agent` "
            "or set AVP_AGENT_BIN"
        )
    return str(path)


class Agent:
    """A running agent. ``socket`` is its path; ``dir`` holds everything it writes."""

    def __init__(self, args: Optional[List[str]] = None, env: Optional[Dict[str, str]] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="avp-py-test-")
        self.socket = os.path.join(self.dir, "run", "agent.sock")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.audit_log = os.path.join(self.dir, "audit.jsonl")
        environ = {k: v for k, v in os.environ.items() if k not in ("AVP_SOCK", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
        environ.setdefault("AVP_LOG", "debug")
        environ.update(env or {})
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    agent_bin(),
                    "--socket", self.socket,
                    "--vault", os.path.join(self.dir, "vault"),
                    "--audit-log", self.audit_log,
                    *(args or []),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=environ,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.socket)
                return
            except OSError:
                pass
            finally:
                probe.close()
            if self.process.poll() is not None:
                raise RuntimeError(f"avp-agent exited before listening:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"avp-agent did not start:\n{self.logs()}")
            time.sleep(0.01)

    def logs(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def audit(self) -> str:
        try:
            with open(self.audit_log, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def client(self) -> avp_agent.Client:
        return avp_agent.Client(self.socket)

    def init(self) -> "Agent":
        try:
            with self.client() as c:
                c.init(PASSPHRASE, work_factor=WORK_FACTOR)
        except BaseException:
            self.stop()  # the fixture never yields: nothing else would stop it
            raise
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
