"""Heavy jobs as Ray actors: N jobs on N free slots of a cluster, the server still the only front door.

Each job is one *detached* actor named ``dyntet-job-ID`` (namespace ``dyntet``) in a process of its
own on some node. It runs ``child.run_job`` in a thread and queues that function's messages; the
server's watcher thread pulls them with ``take`` (long-poll), so progress, previews (files on the shared
workspace) and logs stream exactly as from a local process. Detached, so a job survives a crash of
the server that started it and the next server re-attaches by name. A worker or node that dies makes
``take`` raise: the pipe ends without an outcome and the manager marks the job interrupted and
resubmits it from its checkpoint (``retries``). Every node must see the workspace at the same path.
"""

from __future__ import annotations

import collections
import os
import queue
import socket
import threading
import time
from typing import Any

import ray
from ray.exceptions import RayError

from dyntet_protocol.codec import packb

from . import child, ray_connect
from .executor import Launched

NAMESPACE = "dyntet"
GPU_KINDS = ("train", "generate")
"""Kinds that ask a GPU when the cluster has one (preprocess and export are CPU work)."""
TAKE_WAIT_S = 0.5
"""Longest a ``take`` call waits for news (how fast the end of a job is seen, at most)."""
RETRIES = 3


@ray.remote(max_concurrency=4, max_restarts=0)
class JobActor:
    """Runs one job; ``run``, ``take`` and ``stop`` are served concurrently (threaded actor)."""

    def __init__(self, log_path: str):
        child._redirect_output(log_path)
        self._messages: queue.Queue[bytes] = queue.Queue()
        self._stop = threading.Event()
        self._finished = threading.Event()

    def where(self) -> dict[str, Any]:
        return {"node": f"{socket.gethostname()} ({ray.util.get_node_ip_address()})", "pid": os.getpid()}

    def run(self, job_id: str, target: str, params: dict[str, Any], workspace: str, resume: bool) -> None:
        try:
            child.run_job(job_id, target, params, workspace, resume, lambda m: self._messages.put(packb(m)),
                          self._stop.is_set)
        finally:
            self._finished.set()

    def take(self, wait_s: float) -> tuple[list[bytes], bool]:
        """Queued messages (waiting up to ``wait_s`` for the first) and whether the job has ended."""
        finished = self._finished.is_set()  # read first: when set, every message is already queued
        batch = []
        try:
            batch.append(self._messages.get(timeout=0 if finished else wait_s))
            while True:
                batch.append(self._messages.get_nowait())
        except queue.Empty:
            pass
        return batch, finished and self._messages.empty()

    def stop(self) -> None:
        self._stop.set()


class _RayPipe:
    """The pipe duck type over an actor: ``recv_bytes`` pulls batches, ``send_bytes(b"stop")`` stops."""

    def __init__(self, actor: Any, first: dict[str, Any] | None = None):
        self.actor = actor
        self._pending: collections.deque[bytes] = collections.deque()
        if first is not None:
            self._pending.append(packb(first))
        self.ended = False
        self.lost = False

    def recv_bytes(self, maxlength: int | None = None) -> bytes:
        while not self._pending:
            if self.ended:
                raise EOFError
            try:
                batch, finished = ray.get(self.actor.take.remote(TAKE_WAIT_S))
            except RayError:
                self.ended = self.lost = True
                raise EOFError from None
            self._pending.extend(batch)
            if finished:
                self.ended = True
                ray.kill(self.actor)  # detached actors do not end by themselves
        return self._pending.popleft()

    def send_bytes(self, data: bytes) -> None:
        if data == b"stop" and not self.ended:
            self.actor.stop.remote()

    def close(self) -> None:
        pass


class _RayProcess:
    """The process duck type: alive until the pipe ended; exit code 0, or None when the worker was lost."""

    def __init__(self, pipe: _RayPipe, pid: int | None = None):
        self._pipe = pipe
        self.pid = pid

    def is_alive(self) -> bool:
        return not self._pipe.ended

    def terminate(self) -> None:
        try:
            ray.kill(self._pipe.actor)
        except RayError:
            pass

    kill = terminate

    def join(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    @property
    def exitcode(self) -> int | None:
        return None if self._pipe.lost or not self._pipe.ended else 0


class RayExecutor:
    """Connects to a Ray cluster on construction (``ray_connect``: raises ValueError with what to do)."""

    name = "ray"
    retries = RETRIES

    def __init__(self, address: str):
        ray_connect.connect(address, NAMESPACE)
        self.address = address

    def start(self, job_id: str, kind_name: str, target: str, params: dict[str, Any], workspace: str,
              resume: bool, log_path: str) -> Launched:
        gpus = 1 if kind_name in GPU_KINDS and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        actor = JobActor.options(name=f"dyntet-job-{job_id}", lifetime="detached", num_cpus=1,
                                 num_gpus=gpus).remote(log_path)
        actor.run.remote(job_id, target, params, workspace, resume)
        return self._attach(actor)

    def reattach(self, job_id: str) -> Launched | None:
        try:
            actor = ray.get_actor(f"dyntet-job-{job_id}", namespace=NAMESPACE)
        except ValueError:
            return None
        return self._attach(actor)

    def _attach(self, actor: Any) -> Launched:
        pipe = _RayPipe(actor)
        process = _RayProcess(pipe)

        def where() -> None:  # placement can wait for a free slot: never block the server's loop on it
            try:
                found = ray.get(actor.where.remote())
            except RayError:
                return
            process.pid = found["pid"]
            pipe._pending.appendleft(packb({"t": "node", **found}))

        threading.Thread(target=where, daemon=True, name="dyntet-ray-where").start()
        return Launched(process, pipe, None)

    def slots(self, configured: int) -> int:
        resources = ray.cluster_resources()
        return max(1, int(resources.get("GPU", 0)) or int(resources.get("CPU", configured)))

    def status(self) -> dict[str, Any]:
        total, free = ray.cluster_resources(), ray.available_resources()
        nodes = [{"node": f"{n.get('NodeManagerHostname')} ({n.get('NodeManagerAddress')})", "alive": n.get("Alive"),
                  "cpus": n.get("Resources", {}).get("CPU", 0), "gpus": n.get("Resources", {}).get("GPU", 0)}
                 for n in ray.nodes()]
        return {"executor": self.name, "address": self.address, "slots": self.slots(1),
                "cpus": total.get("CPU", 0), "free_cpus": free.get("CPU", 0), "gpus": total.get("GPU", 0),
                "free_gpus": free.get("GPU", 0), "nodes": nodes}

    def close(self) -> None:
        ray.shutdown()
