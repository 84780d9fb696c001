"""Inside a job's process: run the adapter, report over a pipe, stop when told or orphaned.

The server starts :func:`main` with ``multiprocessing``'s *spawn* method (a fresh interpreter: no
state inherited from the server, CUDA-safe). Messages to the server are msgpack maps sent with
``Connection.send_bytes`` (never pickled objects)::

    {"t": "progress", "progress": {stage, step, total, message, metrics, eta_s, preview}}
    {"t": "log", "level": "INFO", "logger": str, "message": str}
    {"t": "done", "result": map}
    {"t": "failed", "error": {code, message, details}}
    {"t": "cancelled", "message": str}

The server sends ``b"stop"`` to ask the job to stop (``should_stop()`` turns true; the job saves and
raises ``Cancelled``). If the server dies, the pipe reaches end-of-file: the job is asked to stop the
same way and the process exits after :data:`PARENT_GONE_GRACE_S` at the latest, so no orphan keeps
writing into a run that a restarted server may resume. stdout/stderr go to the job's log file;
SIGINT is ignored (Ctrl-C in the server's terminal reaches the whole process group; the server
decides what happens to its jobs).
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from dyntet.progress import Cancelled, Progress
from dyntet_protocol.codec import packb
from dyntet_protocol.errors import ErrorCode

PARENT_GONE_GRACE_S = 10.0
"""After the server vanished, the job has this long to save and stop before the process exits."""
PROGRESS_MIN_INTERVAL_S = 0.1
"""Progress reports closer together than this are merged (the last one wins)."""
LOG_PROGRESS_INTERVAL_S = 5.0
"""A progress line is written to the job's log file at most this often."""
EXIT_PARENT_GONE = 75
MAX_TRACEBACK_CHARS = 4000


class _Channel:
    """Thread-safe sender to the server; silently drops messages once the server is gone."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = packb(message)
        with self._lock:
            try:
                self._conn.send_bytes(data)
            except (OSError, ValueError):
                pass


class _Sender:
    """Holds the ``send`` function under the name the log handler and the reporter call."""

    def __init__(self, send: Callable[[dict[str, Any]], None]):
        self.send = send


class _PipeLogHandler(logging.Handler):
    def __init__(self, channel: _Sender):
        super().__init__(logging.INFO)
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)[:4000]
        except Exception:  # a broken log call must not break the job
            return
        self._channel.send({"t": "log", "level": record.levelname, "logger": record.name, "message": message})


class _Reporter:
    """The ``progress`` callback handed to the job: throttles and converts to plain values."""

    def __init__(self, channel: _Sender):
        self._channel = channel
        self._last_sent = 0.0
        self._last_logged = 0.0
        self._last_key: tuple = ()
        self._pending: dict[str, Any] | None = None

    def __call__(self, progress: Progress) -> None:
        report = {
            "stage": str(progress.stage), "step": int(progress.step), "total": int(progress.total),
            "message": str(progress.message)[:500],
            "metrics": {str(k)[:64]: _finite(v) for k, v in list(progress.metrics.items())[:64]},
            "eta_s": _finite(progress.eta_s),
            "preview": None if progress.preview is None else str(Path(progress.preview).resolve()),
        }
        now = time.monotonic()
        key = (report["stage"], report["preview"])
        last_step = report["step"] >= report["total"] > 0
        if now - self._last_sent >= PROGRESS_MIN_INTERVAL_S or key != self._last_key or last_step:
            self._channel.send({"t": "progress", "progress": report})
            self._last_sent, self._last_key, self._pending = now, key, None
        else:
            self._pending = report
        if now - self._last_logged >= LOG_PROGRESS_INTERVAL_S:
            self._last_logged = now
            print(f"[{report['stage']}] {report['step']}/{report['total']} {report['message']}", flush=True)

    def flush(self) -> None:
        if self._pending is not None:
            self._channel.send({"t": "progress", "progress": self._pending})
            self._pending = None


def main(job_id: str, target: str, params: dict[str, Any], workspace: str, resume: bool, conn: Connection,
         log_path: str) -> None:
    """Process entry point (see the module docstring)."""
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _redirect_output(log_path)
    channel = _Channel(conn)
    stop = threading.Event()
    threading.Thread(target=_watch_parent, args=(conn, stop), name="dyntet-job-watchdog", daemon=True).start()
    run_job(job_id, target, params, workspace, resume, channel.send, stop.is_set)


def run_job(job_id: str, target: str, params: dict[str, Any], workspace: str, resume: bool,
            send: Callable[[dict[str, Any]], None], should_stop: Callable[[], bool]) -> None:
    """Run the adapter and report through ``send`` (the messages of the module docstring); never raises.
    Shared by the local process (a pipe) and a Ray worker (a message queue)."""
    channel = _Sender(send)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = _PipeLogHandler(channel)
    logging.getLogger().addHandler(handler)
    log = logging.getLogger("dyntet.job")
    log.info("job %s: %s, resume=%s, process %d", job_id, target, resume, os.getpid())
    reporter = _Reporter(channel)
    try:
        module_name, function_name = target.split(":")
        function = getattr(importlib.import_module(module_name), function_name)
        result = function(params, workspace=Path(workspace), resume=resume, progress=reporter, should_stop=should_stop)
        reporter.flush()
        log.info("job %s finished", job_id)
        channel.send({"t": "done", "result": result if isinstance(result, dict) else {"value": result}})
    except Cancelled as exc:
        reporter.flush()
        log.info("job %s stopped: %s", job_id, exc)
        channel.send({"t": "cancelled", "message": str(exc)[:500]})
    except MemoryError as exc:
        log.error("job %s ran out of memory: %s", job_id, exc)
        channel.send({"t": "failed", "error": _error(ErrorCode.OUT_OF_MEMORY, f"out of memory: {exc}", exc)})
    except Exception as exc:
        log.error("job %s failed:\n%s", job_id, traceback.format_exc())
        from dyntet.failures import explain  # the CLI's sentence for the same failure

        message = explain(exc) or f"{type(exc).__name__}: {exc}"
        channel.send({"t": "failed", "error": _error(ErrorCode.JOB_FAILED, message, exc)})
    finally:
        logging.getLogger().removeHandler(handler)
        sys.stdout.flush()
        sys.stderr.flush()


def _error(code: ErrorCode, message: str, exc: BaseException) -> dict[str, Any]:
    text = "".join(traceback.format_exception(exc))
    return {"code": code.value, "message": message[:2000],
            "details": {"type": type(exc).__name__, "traceback": text[-MAX_TRACEBACK_CHARS:]}}


def _watch_parent(conn: Connection, stop: threading.Event) -> None:
    while True:
        try:
            message = conn.recv_bytes(64)
        except (EOFError, OSError):
            stop.set()  # the server is gone: save and stop, then leave for good
            time.sleep(PARENT_GONE_GRACE_S)
            os._exit(EXIT_PARENT_GONE)
        if message == b"stop":
            stop.set()


def _redirect_output(log_path: str) -> None:
    """Send this process's stdout and stderr (Python and native) to the job's log file."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for target in (1, 2):
        os.dup2(fd, target)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
