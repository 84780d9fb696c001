"""Helpers of the server tests: a real ``dyntet serve`` process on loopback (ephemeral ports), waiting,
and a minimal sequence folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dyntet_protocol import Client, ProtocolError
from dyntet_protocol.framing import Reply

STARTUP_TIMEOUT_S = 30.0


@dataclass
class ServerProcess:
    workspace: Path
    process: subprocess.Popen
    requests: str
    events: str
    stderr_path: Path

    def client(self, **kwargs) -> Client:
        client = Client(self.requests, timeout_s=kwargs.pop("timeout_s", 10.0), **kwargs)
        client.connect()
        return client

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 20.0) -> int:
        """Graceful shutdown through the protocol; kill if it does not exit in time."""
        if self.alive():
            try:
                with Client(self.requests, timeout_s=3.0, retries=0) as client:
                    client.shutdown()
            except Exception:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_server(workspace: Path, *extra: str, bind: str = "tcp://127.0.0.1:*",
                 events: str = "tcp://127.0.0.1:*") -> ServerProcess:
    """Launch ``python -m dyntet.server`` and wait until ``server.json`` names its endpoints."""
    workspace.mkdir(parents=True, exist_ok=True)
    info = workspace / ".dyntet" / "server.json"
    info.unlink(missing_ok=True)
    stderr_path = workspace.parent / f"{workspace.name}-server-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "dyntet.server", "--workspace", str(workspace), "--bind", bind,
               "--events", events, "--no-probe", "--cancel-grace", "5", "--shutdown-grace", "5", *extra]
    with open(stderr_path, "wb") as err:
        process = subprocess.Popen(command,
                                   stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{stderr_path.read_text()}")
        try:
            data = json.loads(info.read_text())
            if data.get("pid") == process.pid:
                return ServerProcess(workspace, process, data["requests"], data["events"], stderr_path)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start within {STARTUP_TIMEOUT_S} s:\n{stderr_path.read_text()}")


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return "\nState:\tZ" not in status
    except OSError:
        return True


def wait_for(predicate, timeout_s: float, interval_s: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


NUM_FRAMES = 60
NUM_VERTS = 5000


def write_sequence_folder(folder, num_frames: int = NUM_FRAMES, num_verts: int = NUM_VERTS, seed: int = 0):
    """A minimal sequence folder (docs/dataset-format.md): what the server reads to serve frames."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    vertices = rng.standard_normal((num_frames, num_verts, 3)).astype(np.float32)
    np.save(folder / "vertices.npy", vertices)
    np.save(folder / "faces.npy", rng.integers(0, num_verts, (num_verts, 3)).astype(np.int32))
    np.save(folder / "head_pose.npy", np.tile(np.eye(4, dtype=np.float32), (num_frames, 1, 1)))
    (folder / "manifest.json").write_text(json.dumps({
        "format": "dyntet-sequence", "version": 1, "num_frames": num_frames, "num_vertices": num_verts,
        "num_faces": num_verts, "fps": 25.0, "has_audio": False}))
    return vertices


def raw_request(client: Client, request_type: str, params: dict) -> Reply:
    """Send without the client's own validation, as a hostile client would; errors come back as a Reply."""
    request_id = client._send(request_type, params)
    try:
        return client._receive({request_id}, None)
    except ProtocolError as exc:
        return Reply(request_id, request_type, False, error=exc)
