"""Wire-protocol throughput and latency against a real ``dyntet serve`` process on loopback.

- ``bulk_mb_s``: a 200 MB sequence (``vertices.npy``, float32 [500, 33334, 3]) fetched with
  ``Client.fetch_frames`` (default 8 MiB chunks, 4 in flight), best of 5.
- ``raw_zmq_mb_s``: the same bytes in the same chunks streamed by bare pyzmq (PUSH → PULL, zero-copy
  from the same memory-mapped file, copied on arrival into a newly allocated array — what
  ``fetch_frames`` returns too), best of 5. No requests, no headers: an upper bound.
  The two alternate run by run, so both see the same machine load.
- ``ratio`` = ``bulk_mb_s / raw_zmq_mb_s`` (target ≥ 0.5); ``ratio_median``: median of the paired runs.
- ``rtt_ms_p50`` / ``rtt_ms_p99``: ``ping`` round trips through the Client (2,000 of them).
- ``bulk_f16_mb_s``: the same frames as float16 (MB of float32 data delivered per second).
MB = 10^6 bytes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from dyntet_protocol import Client
from dyntet_protocol.constants import DEFAULT_CHUNK_BYTES

FRAMES, VERTICES = 500, 33_334
REPEATS = 5
PINGS = 2_000

_RAW_SENDER = r"""
import sys, numpy as np, zmq
path, endpoint, control, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = np.load(path, mmap_mode="r", allow_pickle=False)
flat = memoryview(data.reshape(-1).view(np.uint8))
ctx = zmq.Context()
push = ctx.socket(zmq.PUSH)
push.connect(endpoint)
go = ctx.socket(zmq.PULL)
go.connect(control)
while go.recv() == b"go":          # one stream per "go"; anything else ends
    for start in range(0, flat.nbytes, chunk):
        push.send(flat[start:start + chunk], copy=False)
    push.send(b"")
push.close(linger=-1)
go.close()
ctx.term()
"""


def run() -> dict:
    base = Path(tempfile.mkdtemp(prefix="dyntet-bench-server-"))
    try:
        return _run(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(base: Path) -> dict:
    workspace = base / "ws"
    folder = workspace / "sequences" / "bench"
    folder.mkdir(parents=True)
    vertices = np.random.default_rng(0).standard_normal((FRAMES, VERTICES, 3)).astype(np.float32)
    np.save(folder / "vertices.npy", vertices)
    nbytes = vertices.nbytes
    print(f"sequence: float32 {list(vertices.shape)} = {nbytes / 1e6:.1f} MB")

    server = _start_server(workspace)
    raw = _RawStream(folder / "vertices.npy", nbytes)
    bulk, raws = [], []
    try:
        with Client(server["requests"], timeout_s=60) as client:
            for _ in range(REPEATS):
                start = time.perf_counter()
                got = client.fetch_frames("sequences/bench")
                bulk.append(nbytes / 1e6 / (time.perf_counter() - start))
                if not np.array_equal(got[::97], vertices[::97]):
                    raise RuntimeError("fetched frames differ from the file")
                del got
                raws.append(raw.measure())
            print(f"Client.fetch_frames float32: {', '.join(f'{b:.0f}' for b in bulk)} MB/s")
            print(f"bare pyzmq PUSH/PULL:        {', '.join(f'{r:.0f}' for r in raws)} MB/s")
            start = time.perf_counter()
            client.fetch_frames("sequences/bench", dtype="float16")
            f16 = nbytes / 1e6 / (time.perf_counter() - start)
            print(f"Client.fetch_frames float16: {f16:.0f} MB/s of float32 data")
            for _ in range(100):
                client.ping()
            rtts = np.array([client.ping() for _ in range(PINGS)]) * 1000
            print(f"ping round trip: p50 {np.percentile(rtts, 50):.3f} ms, p99 {np.percentile(rtts, 99):.3f} ms")
            client.shutdown()
    finally:
        raw.close()
        try:
            server["process"].wait(30)
        except subprocess.TimeoutExpired:
            server["process"].kill()

    figures = {
        "bulk_mb_s": round(max(bulk), 1), "raw_zmq_mb_s": round(max(raws), 1),
        "ratio": round(max(bulk) / max(raws), 3),
        "ratio_median": round(float(np.median(np.array(bulk) / np.array(raws))), 3),
        "rtt_ms_p50": round(float(np.percentile(rtts, 50)), 4), "rtt_ms_p99": round(float(np.percentile(rtts, 99)), 4),
        "bulk_f16_mb_s": round(f16, 1), "bytes": nbytes, "chunk_bytes": DEFAULT_CHUNK_BYTES,
    }
    print(f"ratio {figures['ratio']:.2f} (target ≥ 0.5); median of paired runs {figures['ratio_median']:.2f}")
    return figures


def _start_server(workspace: Path, *extra: str) -> dict:
    command = [sys.executable, "-m", "dyntet.server", "--workspace", str(workspace), "--bind", "tcp://127.0.0.1:*",
               "--events", "tcp://127.0.0.1:*", "--no-probe", "--log-level", "WARNING", *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    info = workspace / ".dyntet" / "server.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = json.loads(info.read_text())
            if data.get("pid") == process.pid:
                return {"process": process, **data}
        except (OSError, ValueError):
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not start")


class _RawStream:
    """A bare-pyzmq sender process streaming the file on request, and the receiving end."""

    def __init__(self, path: Path, nbytes: int):
        self.nbytes = nbytes
        self.context = zmq.Context()
        self.pull = self.context.socket(zmq.PULL)
        self.pull.bind("tcp://127.0.0.1:*")
        self.control = self.context.socket(zmq.PUSH)
        self.control.bind("tcp://127.0.0.1:*")
        self.sender = subprocess.Popen([sys.executable, "-c", _RAW_SENDER, str(path), self.pull.last_endpoint.decode(),
                                        self.control.last_endpoint.decode(), str(DEFAULT_CHUNK_BYTES)])

    def measure(self) -> float:
        """MB/s of one stream, received into a new array, timed from the first chunk."""
        self.control.send(b"go")
        out = np.empty(self.nbytes, dtype=np.uint8)
        frame = self.pull.recv(copy=False)
        start = time.perf_counter()
        first = offset = len(frame.buffer)
        out[:offset] = np.frombuffer(frame.buffer, dtype=np.uint8)
        while True:
            frame = self.pull.recv(copy=False)
            if len(frame.buffer) == 0:
                break
            view = np.frombuffer(frame.buffer, dtype=np.uint8)
            out[offset:offset + view.size] = view
            offset += view.size
        return (self.nbytes - first) / 1e6 / (time.perf_counter() - start)

    def close(self) -> None:
        self.control.send(b"stop")
        try:
            self.sender.wait(30)
        except subprocess.TimeoutExpired:
            self.sender.kill()
        self.pull.close(linger=0)
        self.control.close(linger=0)
        self.context.term()


if __name__ == "__main__":
    print(json.dumps(run()))
