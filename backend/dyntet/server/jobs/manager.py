"""The job queue and the state machine of job records, driven by the server's event loop.

States: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled`` | ``interrupted``;
``job.resume`` puts a failed, cancelled or interrupted job back to ``queued``.

Each running job has a child process (spawn) and a watcher thread that blocks on the job's pipe and
forwards every message, then the process's exit, to an inproc PULL socket that the server polls with
its requests. So the server's loop never blocks on a job, works on every OS (pipes are not pollable
by ZeroMQ on Windows), and a job's death — exception, signal, native crash, the OOM killer — is only
a message: the server carries on. How a job ended decides its state:

=================================================  ===============
the job reported ``done``                          ``done``
the job reported ``failed`` (exception)            ``failed``
cancel requested (job stopped, or was killed)      ``cancelled``
server shutting down, or no report (killed, crash) ``interrupted``
=================================================  ===============

Where the process runs is the executor's business (``executor.py``: this machine or a Ray cluster). A
resumable job that lost its cluster worker is queued again from its checkpoint, up to
``executor.retries`` times, instead of staying ``interrupted``.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import secrets
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Iterable

import zmq

from dyntet_protocol.codec import Limits, packb, unpackb
from dyntet_protocol.constants import MAX_PREVIEW_BYTES
from dyntet_protocol.errors import ErrorCode, ProtocolError
from dyntet_protocol.messages import RESUMABLE_STATES

from ..workspace import Workspace
from . import child
from .executor import Executor, LocalExecutor
from .kinds import JOB_KINDS, JobKind
from .store import JobRecord, JobStore

log = logging.getLogger("dyntet.server")

Publish = Callable[[str, str, dict[str, Any], list[Any]], None]
"""``publish(job_id, event_type, data, buffers)``."""

SAVE_PROGRESS_INTERVAL_S = 2.0
"""Progress is written to the job's record at most this often (state changes at once)."""
KILL_AFTER_TERMINATE_S = 5.0
"""After SIGTERM, a job process that is still alive gets SIGKILL this much later."""
MAX_PIPE_MESSAGE_BYTES = 16 * 1024 * 1024
_PIPE_LIMITS = Limits(max_body_bytes=MAX_PIPE_MESSAGE_BYTES, max_bin_len=MAX_PIPE_MESSAGE_BYTES)


@dataclass
class _Running:
    record: JobRecord
    kind: JobKind
    process: Any
    """A ``multiprocessing`` process or its duck type (see ``executor.py``)."""
    conn: Any
    watcher: threading.Thread
    outcome: dict[str, Any] | None = None
    stop_deadline: float | None = None
    terminated_at: float | None = None
    last_saved: float = field(default_factory=time.monotonic)
    preview_stamp: tuple | None = None


class JobManager:
    """Owns job records, the queue and the running processes.

    Not thread-safe: call it from the server's loop only (watcher threads talk through ``socket``).
    """

    def __init__(self, ws: Workspace, store: JobStore, context: zmq.Context, publish: Publish, *,
                 max_running: int = 1, max_queued: int = 100, cancel_grace_s: float = 30.0,
                 executor: Executor | None = None):
        if max_running < 1 or max_queued < 0 or cancel_grace_s < 0:
            raise ValueError("max_running ≥ 1, max_queued ≥ 0 and cancel_grace_s ≥ 0 are required")
        self.ws = ws
        self.store = store
        self.max_running = max_running
        self.max_queued = max_queued
        self.cancel_grace_s = cancel_grace_s
        self._publish = publish
        self._context = context
        self.executor = executor or LocalExecutor()
        self.records: dict[str, JobRecord] = {}
        self.queue: collections.deque[str] = collections.deque()
        self.running: dict[str, _Running] = {}
        self._inbox = f"inproc://dyntet-jobs-{secrets.token_hex(6)}"
        self.socket = context.socket(zmq.PULL)
        """Readable when a job has news: the server polls it and then calls :meth:`drain`."""
        self.socket.linger = 0
        self.socket.bind(self._inbox)
        self.shutting_down = False

    # --- lifecycle -------------------------------------------------------------------------------

    def load(self) -> None:
        """Read earlier records: ``running`` ones become ``interrupted``, ``queued`` ones queue again."""
        for record in self.store.load_all():
            if record.state == "running" and self._reattach(record):
                continue
            if record.state == "running":
                record.state = "interrupted"
                record.finished = time.time()
                record.error = {"code": ErrorCode.JOB_CRASHED.value,
                                "message": "the server stopped while this job was running",
                                "details": {"pid": record.pid}}
                self.store.save(record)
            self.records[record.id] = record
            if record.state == "queued":
                self.queue.append(record.id)
        if self.records:
            log.info("loaded %d job record(s); %d queued", len(self.records), len(self.queue))

    def close(self) -> None:
        self.socket.close(linger=0)

    def _reattach(self, record: JobRecord) -> bool:
        """Follow a job that an earlier server left running on the cluster (never for local jobs)."""
        kind = JOB_KINDS.get(record.kind)
        launched = self.executor.reattach(record.id) if kind is not None else None
        if launched is None:
            return False
        self.records[record.id] = record
        self._follow(record, kind, launched.process, launched.conn)
        log.info("job %s re-attached on %s", record.id, record.node)
        return True

    def _follow(self, record: JobRecord, kind: JobKind, process: Any, conn: Any) -> None:
        watcher = threading.Thread(target=_watch, args=(self._context, self._inbox, record.id, process, conn),
                                   name=f"dyntet-watch-{record.id}", daemon=True)
        self.running[record.id] = _Running(record, kind, process, conn, watcher)
        watcher.start()

    # --- requests --------------------------------------------------------------------------------

    def submit(self, kind_name: str, params: Any) -> JobRecord:
        kind = self._kind(kind_name)
        params, outputs = kind.check(params, self.ws)
        self._check_room(outputs)
        record = JobRecord(id=self.store.new_id(), kind=kind.name, params=params, outputs=outputs,
                           resumable=kind.resumable, checkpoint=kind.checkpoint_path(outputs))
        self.records[record.id] = record
        self.queue.append(record.id)
        self._changed(record)
        log.info("job %s (%s) queued", record.id, kind.name)
        self.schedule()
        return record

    def cancel(self, job_id: str) -> JobRecord:
        record = self.get(job_id)
        if record.state == "queued":
            self.queue.remove(job_id)
            self._finish(record, "cancelled")
        elif record.state == "running":
            running = self.running[job_id]
            if not record.cancel_requested:
                record.cancel_requested = True
                self._ask_to_stop(running, self.cancel_grace_s)
                self._changed(record)
        else:
            raise ProtocolError(ErrorCode.INVALID_STATE,
                                f"job {job_id} is {record.state}; only queued or running jobs can be cancelled",
                                {"state": record.state})
        return record

    def resume(self, job_id: str) -> JobRecord:
        record = self.get(job_id)
        if record.state not in RESUMABLE_STATES:
            raise ProtocolError(ErrorCode.INVALID_STATE,
                                f"job {job_id} is {record.state}; only "
                                f"{', '.join(RESUMABLE_STATES)} jobs can be resumed",
                                {"state": record.state})
        self._check_room(record.outputs, ignore=job_id)
        if record.pid is not None and job_id not in self.running and _job_process_alive(record.pid):
            raise ProtocolError(ErrorCode.INVALID_STATE, f"the job's previous process {record.pid} is still stopping; "
                                "resume it in a few seconds", {"pid": record.pid})
        record.state, record.error, record.result, record.cancel_requested = "queued", None, None, False
        record.finished = None
        self.queue.append(job_id)
        self._changed(record)
        self.schedule()
        return record

    def get(self, job_id: str) -> JobRecord:
        record = self.records.get(job_id)
        if record is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no job {job_id}", {"job": job_id})
        return record

    def list(self, states: Iterable[str] = (), limit: int = 200) -> list[JobRecord]:
        wanted = set(states)
        records = [r for r in self.records.values() if not wanted or r.state in wanted]
        return sorted(records, key=lambda r: (r.created, r.id), reverse=True)[:limit]

    def view(self, record: JobRecord, with_log: bool = False) -> dict[str, Any]:
        """A record as clients see it: the stored fields plus queue position, checkpoint facts, log tail."""
        out = asdict(record)
        out["position"] = self.queue.index(record.id) if record.id in self.queue else None
        out["checkpoint"] = None
        if record.checkpoint is not None:
            path = self.ws.root / record.checkpoint
            stat = path.stat() if path.is_file() else None
            out["checkpoint"] = {"path": record.checkpoint, "exists": stat is not None,
                                 "mtime": stat.st_mtime if stat else None, "size": stat.st_size if stat else None}
        if with_log:
            out["log_tail"] = self.store.log_tail(record.id)
        return out

    # --- the loop's duties -----------------------------------------------------------------------

    def schedule(self) -> None:
        """Start queued jobs while there is room (light kinds do not wait for heavy ones)."""
        if self.shutting_down:
            return
        for job_id in list(self.queue):
            record = self.records[job_id]
            kind = JOB_KINDS.get(record.kind)
            heavy_running = sum(1 for r in self.running.values() if r.kind.heavy)
            if kind is not None and kind.heavy and heavy_running >= self.executor.slots(self.max_running):
                continue
            self.queue.remove(job_id)
            self._start(record, kind)

    def drain(self) -> None:
        """Handle every message the watcher threads have forwarded."""
        while True:
            try:
                job_id, data = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            running = self.running.get(job_id.decode("ascii", "replace"))
            if running is None:
                continue
            try:
                message = unpackb(data, _PIPE_LIMITS)
                self._handle(running, message)
            except (ProtocolError, KeyError, TypeError, ValueError) as exc:
                log.warning("job %s sent an unreadable message: %s", running.record.id, exc)

    def tick(self) -> None:
        """Escalate stops that take too long (SIGTERM, then SIGKILL)."""
        now = time.monotonic()
        for running in list(self.running.values()):
            if running.stop_deadline is None or now < running.stop_deadline or not running.process.is_alive():
                continue
            if running.terminated_at is None:
                log.warning("job %s did not stop in time; terminating process %s",
                            running.record.id, running.process.pid)
                running.process.terminate()
                running.terminated_at = now
            elif now - running.terminated_at > KILL_AFTER_TERMINATE_S:
                running.process.kill()

    def begin_shutdown(self, grace_s: float) -> float:
        """Server shutdown, part 1: start nothing new, ask every running job to stop (it checkpoints).
        Returns the monotonic time by which :meth:`finish_shutdown` should be called at the latest.
        Queued jobs stay queued for the next server."""
        self.shutting_down = True
        for running in list(self.running.values()):
            self._ask_to_stop(running, grace_s)
        return time.monotonic() + grace_s + KILL_AFTER_TERMINATE_S + 2

    def finish_shutdown(self) -> None:
        """Server shutdown, part 2: end what is still running; those jobs become ``interrupted``."""
        for running in list(self.running.values()):
            running.process.kill()
            running.process.join(5)
            self.drain()
            if running.record.id in self.running:
                self._exited(running, running.process.exitcode)

    def stop_all(self, grace_s: float) -> None:
        """Both shutdown parts, waiting (and handling job messages) in between."""
        deadline = self.begin_shutdown(grace_s)
        while self.running and time.monotonic() < deadline:
            if self.socket.poll(100, zmq.POLLIN):
                self.drain()
            self.tick()
        self.finish_shutdown()

    @property
    def busy(self) -> bool:
        return bool(self.running or self.queue)

    # --- internals -------------------------------------------------------------------------------

    def _kind(self, name: str) -> JobKind:
        kind = JOB_KINDS.get(name)
        if kind is None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown job kind {name!r}", {"known": sorted(JOB_KINDS)})
        if not kind.available():
            raise ProtocolError(ErrorCode.UNAVAILABLE, f"job kind {name!r} is not available in this backend "
                                f"({kind.requires} is not installed)", {"requires": kind.requires})
        return kind

    def _check_room(self, outputs: dict[str, str], ignore: str | None = None) -> None:
        if len(self.queue) >= self.max_queued:
            raise ProtocolError(ErrorCode.QUEUE_FULL,
                                f"{len(self.queue)} jobs are already waiting", {"limit": self.max_queued})
        for other in self.records.values():
            if other.id == ignore or other.state not in ("queued", "running"):
                continue
            for mine in outputs.values():
                for theirs in other.outputs.values():
                    if _overlaps(mine, theirs):
                        raise ProtocolError(ErrorCode.INVALID_STATE,
                                            f"job {other.id} ({other.state}) already writes {theirs}",
                                            {"job": other.id, "path": theirs})

    def _start(self, record: JobRecord, kind: JobKind | None) -> None:
        try:
            if kind is None:
                raise ProtocolError(ErrorCode.UNAVAILABLE, f"job kind {record.kind!r} is not known to this server")
            kind = self._kind(kind.name)
            kind.check(record.params, self.ws)  # paths may have changed since the job was queued
        except ProtocolError as exc:
            record.error = exc.to_wire()
            self._finish(record, "failed")
            return
        resume = kind.resumable and record.attempts > 0
        launched = self.executor.start(record.id, kind.name, kind.target, record.params, str(self.ws.root), resume,
                                       str(self.store.log_path(record.id)))
        self._follow(record, kind, launched.process, launched.conn)
        record.state, record.started, record.finished = "running", time.time(), None
        record.attempts += 1
        record.pid, record.node = launched.process.pid, launched.node
        record.progress, record.result, record.error = None, None, None
        self._changed(record)
        log.info("job %s (%s) started on %s%s", record.id, kind.name,
                 f"process {record.pid}" if record.pid else self.executor.name, " (resume)" if resume else "")

    def _handle(self, running: _Running, message: dict[str, Any]) -> None:
        kind = message["t"]
        record = running.record
        if kind == "progress":
            record.progress = message["progress"]
            preview = record.progress.pop("preview", None)
            record.progress["preview"] = self.ws.relative(Path(preview)) if preview else None
            self._publish(record.id, "progress", record.progress, [])
            self._publish_preview(running, preview)
            if time.monotonic() - running.last_saved > SAVE_PROGRESS_INTERVAL_S:
                self._save(running)
        elif kind == "log":
            self._publish(record.id, "log", {k: message[k] for k in ("level", "logger", "message")}, [])
        elif kind in ("done", "failed", "cancelled"):
            running.outcome = message
        elif kind == "node":  # a cluster job was placed
            record.node, record.pid = message["node"], message["pid"]
            self._changed(record)
        elif kind == "exited":
            self._exited(running, message["exitcode"])

    def _publish_preview(self, running: _Running, preview: str | None) -> None:
        rel = self.ws.relative(Path(preview)) if preview else None
        if rel is None:
            return
        try:
            stat = os.stat(preview)
            stamp = (rel, stat.st_mtime_ns, stat.st_size)
            if stamp == running.preview_stamp:
                return
            running.preview_stamp = stamp
            data = {"path": rel, "format": Path(rel).suffix.lstrip(".").lower(), "size": stat.st_size}
            if stat.st_size > MAX_PREVIEW_BYTES:
                self._publish(running.record.id, "preview", {**data, "included": False}, [])
            else:
                self._publish(running.record.id, "preview", {**data, "included": True}, [Path(preview).read_bytes()])
        except OSError as exc:
            log.debug("preview %s unreadable: %s", preview, exc)

    def _exited(self, running: _Running, exitcode: int | None) -> None:
        record = running.record
        self.running.pop(record.id, None)
        running.conn.close()
        outcome = running.outcome or {}
        what = outcome.get("t")
        if what == "done":
            record.result = outcome.get("result")
            state = "done"
        elif what == "failed":
            record.error = outcome.get("error")
            state = "failed"
        elif record.cancel_requested and not self.shutting_down:
            state = "cancelled"
        else:
            state = "interrupted"
            if what is None:
                record.error = _crash_error(exitcode)
            elif self.shutting_down:
                record.error = {"code": ErrorCode.JOB_CRASHED.value,
                                "message": "the server shut down while the job ran",
                                "details": {"exitcode": exitcode}}
        log.info("job %s %s (exit code %s)", record.id, state, exitcode)
        if state == "interrupted" and not self.shutting_down and record.resumable \
                and record.retries < self.executor.retries:
            record.retries += 1  # a lost cluster worker: continue from the checkpoint on another slot
            log.warning("job %s lost its worker; resubmitted (retry %d of %d)", record.id, record.retries,
                        self.executor.retries)
            record.state = "queued"
            self.queue.appendleft(record.id)
            self._changed(record)
        else:
            self._finish(record, state)
        self.schedule()

    def _finish(self, record: JobRecord, state: str) -> None:
        record.state, record.finished = state, time.time()
        self._changed(record)
        if state == "done":
            self._publish(record.id, "done", {"result": record.result or {}}, [])
        elif state == "failed":
            self._publish(record.id, "failed", {"error": record.error or {}}, [])

    def _ask_to_stop(self, running: _Running, grace_s: float) -> None:
        running.stop_deadline = time.monotonic() + grace_s
        try:
            running.conn.send_bytes(b"stop")
        except (OSError, ValueError):
            pass  # already gone: the watcher will report the exit

    def _changed(self, record: JobRecord) -> None:
        self.store.save(record)
        running = self.running.get(record.id)
        if running is not None:
            running.last_saved = time.monotonic()
        self._publish(record.id, "state", self.view(record), [])

    def _save(self, running: _Running) -> None:
        self.store.save(running.record)
        running.last_saved = time.monotonic()


def _watch(context: zmq.Context, inbox: str, job_id: str, process: multiprocessing.process.BaseProcess,
           conn: Connection) -> None:
    """Watcher thread: forward the job's messages, then its exit code, to the manager's inbox."""
    push = context.socket(zmq.PUSH)
    push.linger = 1000
    push.connect(inbox)
    key = job_id.encode("ascii")
    try:
        while True:
            try:
                data = conn.recv_bytes(MAX_PIPE_MESSAGE_BYTES)
            except (EOFError, OSError):
                break
            push.send_multipart([key, data])
        process.join()
        push.send_multipart([key, packb({"t": "exited", "exitcode": process.exitcode})])
    finally:
        push.close()


def _crash_error(exitcode: int | None) -> dict[str, Any]:
    details: dict[str, Any] = {"exitcode": exitcode}
    if exitcode is not None and exitcode < 0:
        try:
            details["signal"] = signal.Signals(-exitcode).name
        except ValueError:
            details["signal"] = -exitcode
    how = f"signal {details['signal']}" if "signal" in details else f"exit code {exitcode}"
    if exitcode is None:
        how = "its worker or node was lost"
    if exitcode == child.EXIT_PARENT_GONE:
        how = "the server went away"
    return {"code": ErrorCode.JOB_CRASHED.value,
            "message": f"the job's process ended without reporting ({how}); resume continues from the last checkpoint",
            "details": details}


def _job_process_alive(pid: int) -> bool:
    """Whether ``pid`` is still a job process of ours (an orphan of a server that died, which stops
    within ``child.PARENT_GONE_GRACE_S``). Checked on Linux through /proc; elsewhere assumed gone."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return b"multiprocessing" in cmdline and "\nState:\tZ" not in status


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")
