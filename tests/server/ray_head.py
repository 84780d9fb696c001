"""A real Ray head started as a studio starts one (``ray start --head``), for the tests: free ports, a
temporary folder, loopback only, token authentication on, and a stop that leaves no process behind.

``ray stop`` is not used: it ends every Ray process of the machine by name, other people's included.
The head runs ``--block`` in a session of its own instead; every process Ray starts for it (GCS, raylet,
client server, workers, which take process groups of their own) stays in that session, so the stop
ends exactly those, by pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

NODE_IP = "127.0.0.2"
"""Ray replaces 127.0.0.1 by the machine's network address; any other loopback address it keeps."""
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0


@dataclass
class RayHead:
    process: subprocess.Popen
    folder: Path
    """The head's RAY_TMPDIR: session files, logs and ``ray/ray_current_cluster`` (what ``auto`` reads)."""
    gcs_port: int
    client_port: int
    token: str
    log_path: Path

    @property
    def client_address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    @property
    def gcs_address(self) -> str:
        return f"{NODE_IP}:{self.gcs_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_cli() -> list[str]:
    beside = Path(sys.executable).with_name("ray")
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "ray.scripts.scripts"]


def start_ray_head(folder: Path, token: str, num_cpus: int = 2) -> RayHead:
    """``ray start --head --block`` with token authentication; returns once its client server answers."""
    folder.mkdir(parents=True, exist_ok=True)
    gcs_port, client_port = free_port(), free_port()
    # GRPC_ENABLE_FORK_SUPPORT=false as README tells: else the client server's fork of a per-connection
    # server dies now and then (ray-project/ray#63202; 5 of 32 fresh heads here).
    env = {**os.environ, "RAY_TMPDIR": str(folder), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "GRPC_ENABLE_FORK_SUPPORT": "false"}
    env.pop("RAY_ADDRESS", None)
    command = [*_ray_cli(), "start", "--head", "--block", f"--port={gcs_port}",
               f"--ray-client-server-port={client_port}", f"--num-cpus={num_cpus}", "--include-dashboard=false",
               f"--node-ip-address={NODE_IP}", "--disable-usage-stats"]
    log_path = folder / "ray-start.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    head = RayHead(process, folder, gcs_port, client_port, token, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop_ray_head(head)
            raise RuntimeError(f"ray start --head exited with {process.returncode}:\n{head.log()}")
        if (folder / "ray" / "ray_current_cluster").is_file() and _accepts(client_port):
            return head
        time.sleep(0.2)
    stop_ray_head(head)
    raise RuntimeError(f"the Ray head did not start within {START_TIMEOUT_S:g} s:\n{head.log()}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def session_pids(session: int) -> list[int]:
    """Live (not zombie) processes of a session, from /proc (Linux)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == session:  # state, ppid, pgrp, session
            pids.append(int(entry.name))
    return pids


def stop_ray_head(head: RayHead) -> list[int]:
    """SIGTERM to ``ray start --block`` (it stops what it started), then SIGKILL for whatever of its
    session is left; returns the pids still alive after that (none, unless something is badly stuck)."""
    session = head.process.pid
    if head.process.poll() is None:
        head.process.send_signal(signal.SIGTERM)
        try:
            head.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 10.0
    while (left := session_pids(session)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    if head.process.poll() is None:
        head.process.wait(5)
    return session_pids(session)
