#!/usr/bin/env python3
"""How fast Python gets a secret from the agent, next to the floor and to ssh-agent.

Measures, from this one process and interleaved in rounds so drift hits all three alike:

- ``avp_agent.Client.retrieve`` of a 32-byte secret over one connection (JSON wire);
- a bare Unix-socket echo round trip of a line as long as that RETRIEVE request, against an
  echo server in a separate Python process (the floor: one write, one read, no work);
- OpenSSH's ``ssh-agent`` answering SSH2_AGENTC_REQUEST_IDENTITIES (no keys loaded);
- for the breakdown, the same RETRIEVE line sent and its answer read raw (the agent's share).

Targets (issue 14): RETRIEVE p50 ≤ 1.5 × the echo's, and not slower than ssh-agent.

Run by hand, with a release agent for real figures::

    cargo build --release -p avp-agent
    python3 client/python/bench.py            # AVP_AGENT_BIN=… picks another binary

Needs ``ssh-agent`` (Debian: openssh-client) for its row; the others run without it.
"""

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE / "src"))

import avp_agent  # noqa: E402
from avp_agent import _ops  # noqa: E402

ECHO_SERVER = r"""
import os, socket, sys
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1]); listener.listen(1)
print("listening", flush=True)
conn, _ = listener.accept()
while True:
    data = conn.recv(65536)
    if not data:
        break
    conn.sendall(data)
"""


def agent_binary() -> Path:
    explicit = os.environ.get("AVP_AGENT_BIN")
    if explicit:
        return Path(explicit)
    release = REPO / "target" / "release" / "avp-agent"
    if release.is_file():
        return release
    debug = REPO / "target" / "debug" / "avp-agent"
    print(f"note: no release agent, using {debug} (figures will be slower)", file=sys.stderr)
    return debug


def wait_for_socket(path: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while True:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{process.args[0]} did not start listening on {path}")
            time.sleep(0.01)
        finally:
            probe.close()


def percentile(samples: List[int], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1000.0  # ns → µs


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise RuntimeError("connection closed")
        data += chunk
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--per-round", type=int, default=1000, help="calls per row per round (default 1000)")
    parser.add_argument(
        "--free", action="store_true",
        help="do not pin this process and the servers to one CPU (see the README: a wake-up "
        "across CPUs costs more than the work measured, and each server draws its own placement)",
    )
    args = parser.parse_args()
    if not args.free:
        # Like avp-bench's target rows: everything on one CPU, so the figures compare the work
        # per request, not where the scheduler happened to put each server's thread.
        # Children (agent, echo server, ssh-agent) inherit the affinity.
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    work = tempfile.mkdtemp(prefix="avp-py-bench-")
    os.chmod(work, 0o700)
    children: List[subprocess.Popen] = []
    try:
        # The agent, with a vault and one secret.
        agent_sock = os.path.join(work, "run", "agent.sock")
        binary = agent_binary()
        children.append(
            subprocess.Popen(
                [str(binary), "--socket", agent_sock, "--vault", os.path.join(work, "vault"),
                 "--audit-log", os.path.join(work, "audit.jsonl")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "AVP_LOG": "warn"},
            )
        )
        wait_for_socket(agent_sock, children[-1])
        client = avp_agent.Client(agent_sock)
        client.init(b"bench passphrase", work_factor=10)
        session = client.authenticate("bench").session_id
        client.store(session, "API_KEY", os.urandom(32))
        request_len = len(_ops.retrieve(session, "API_KEY", None).line)

        # The echo server, in its own process.
        echo_sock = os.path.join(work, "echo.sock")
        echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, echo_sock], stdout=subprocess.PIPE)
        children.append(echo)
        assert echo.stdout is not None and echo.stdout.readline().strip() == b"listening"
        echo_conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        echo_conn.connect(echo_sock)
        line = b"x" * (request_len - 1) + b"\n"

        def echo_call() -> None:
            echo_conn.sendall(line)
            got = 0
            while got < len(line):
                got += len(echo_conn.recv(65536))

        def retrieve_call() -> None:
            client.retrieve(session, "API_KEY")

        # The same RETRIEVE line written and its answer read raw, on a second connection:
        # the agent's share of the round trip, without the client's building and parsing.
        raw_conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw_conn.connect(agent_sock)
        raw_line = bytes(_ops.retrieve(session, "API_KEY", None).line)

        def raw_call() -> None:
            raw_conn.sendall(raw_line)
            answer = raw_conn.recv(65536)
            while not answer.endswith(b"\n"):
                answer += raw_conn.recv(65536)

        rows: Dict[str, Callable[[], None]] = {
            "RETRIEVE via avp_agent.Client": retrieve_call,
            "RETRIEVE line, raw (no parsing)": raw_call,
            "bare Unix-socket echo (Python)": echo_call,
        }

        # ssh-agent, if installed.
        ssh_agent = shutil.which("ssh-agent")
        if ssh_agent:
            ssh_sock = os.path.join(work, "ssh-agent.sock")
            children.append(
                subprocess.Popen([ssh_agent, "-D", "-a", ssh_sock], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            )
            wait_for_socket(ssh_sock, children[-1])
            ssh_conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            ssh_conn.connect(ssh_sock)
            request_identities = struct.pack(">IB", 1, 11)  # SSH2_AGENTC_REQUEST_IDENTITIES

            def ssh_call() -> None:
                ssh_conn.sendall(request_identities)
                (length,) = struct.unpack(">I", read_exact(ssh_conn, 4))
                answer = read_exact(ssh_conn, length)
                assert answer[0] == 12  # SSH2_AGENT_IDENTITIES_ANSWER

            rows["ssh-agent REQUEST_IDENTITIES"] = ssh_call
        else:
            print("note: ssh-agent not found (Debian: openssh-client); its row is skipped", file=sys.stderr)

        samples: Dict[str, List[int]] = {name: [] for name in rows}
        clock = time.perf_counter_ns
        for name, call in rows.items():  # warm-up
            for _ in range(200):
                call()
        for _ in range(args.rounds):
            for name, call in rows.items():
                bucket = samples[name]
                for _ in range(args.per_round):
                    start = clock()
                    call()
                    bucket.append(clock() - start)

        placement = "free placement" if args.free else f"pinned to CPU {min(os.sched_getaffinity(0))}"
        print(f"agent: {binary}; Python {sys.version.split()[0]}; {placement}; "
              f"{args.rounds} rounds × {args.per_round} calls per row; request line {request_len} bytes")
        print(f"{'':34} {'p50 µs':>9} {'p99 µs':>9}")
        p50: Dict[str, float] = {}
        for name, bucket in samples.items():
            p50[name] = percentile(bucket, 0.50)
            print(f"{name:34} {p50[name]:9.1f} {percentile(bucket, 0.99):9.1f}")
        retrieve = p50["RETRIEVE via avp_agent.Client"]
        echo_p50 = p50["bare Unix-socket echo (Python)"]
        print(f"RETRIEVE / echo p50: {retrieve / echo_p50:.2f}× (target ≤ 1.5×)")
        ssh: Optional[float] = p50.get("ssh-agent REQUEST_IDENTITIES")
        if ssh is not None:
            print(f"RETRIEVE / ssh-agent p50: {retrieve / ssh:.2f}× (target ≤ 1×)")
        client.close()
        return 0
    finally:
        for child in children:
            child.kill()
            child.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
