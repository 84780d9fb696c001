"""The client the Blender add-on (and tests, scripts) use to drive a ``dyntet serve`` backend.

Threading: a ZeroMQ socket must only be used by one thread, so **a Client is not thread-safe**.
Create it in the thread that uses it (the add-on's network worker) and call it only from there;
other threads talk to that worker through a queue. Events arrive on a separate
:class:`~dyntet_protocol.events.EventListener` with its own socket (same rule: one thread).

Reliability follows zguide's "lazy pirate": each request waits ``timeout_s`` for its reply; on a
timeout the socket is closed (LINGER 0, queued messages dropped) and reopened, idempotent requests
are sent once more, and otherwise :class:`~dyntet_protocol.errors.RequestTimeout` is raised. Replies
carry the request id, so a late reply to an abandoned request is recognised and discarded.

Example::

    with Client("tcp://127.0.0.1:5555") as client:         # connects and says hello
        job = client.train("datasets/anna", "runs/anna", preset="preview")
        client.wait(job["id"], timeout_s=3600)
        verts = client.fetch_frames("sequences/anna", 0, 100)   # float32 [T, V, 3]
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from . import PROTOCOL_VERSION
from .codec import array_from_buffer
from .constants import (
    CLIENT_RCVHWM, CLIENT_SNDHWM, DEFAULT_CHUNK_BYTES, DEFAULT_REQUEST_ENDPOINT, DEFAULT_TIMEOUT_S,
    MAX_CHUNK_BYTES, MAX_REPLY_BYTES, MAX_UPLOAD_CHUNK_BYTES, MIB, RECONNECT_IVL_MAX_MS, RECONNECT_IVL_MS,
    TRANSPORT_HEARTBEAT_IVL_MS, TRANSPORT_HEARTBEAT_TIMEOUT_MS,
)
from .errors import ErrorCode, ProtocolError, RequestTimeout
from .framing import Reply, decode_reply, encode_request
from .keys import ClientKeys
from .messages import REQUESTS, TERMINAL_STATES
from .schema import fail

ProgressCallback = Callable[[int, int], None]
"""``progress(done, total)`` in bytes (files) or frames (arrays)."""

HASH_BYTES_PER_S = 64 * MIB
"""A pessimistic speed at which the server reads and hashes a file: ``upload.begin`` and ``upload.finish``
may hash the whole file, so their timeout grows by ``size / HASH_BYTES_PER_S``."""

_HANDSHAKE_FAILURES = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                       | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


@dataclass(frozen=True)
class ServerInfo:
    """What ``hello`` told us about the server."""

    protocol: int
    server_version: str
    server_id: str
    """Random per server start: a change means the server restarted."""
    events_endpoint: str
    """Where to subscribe for events, as reachable from this client."""
    capabilities: dict[str, Any]
    """``{"ready": bool, "device": str | None, "backends": {...}}`` — device and backends in use."""
    job_kinds: dict[str, Any]
    limits: dict[str, Any]
    heartbeat_interval_s: float
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


def socket_options(socket: zmq.Socket, *, sndhwm: int, rcvhwm: int, max_msg_bytes: int) -> None:
    """Options every socket of ours gets: no lingering on close, bounded queues and frame sizes,
    transport heartbeats, bounded reconnect back-off."""
    socket.linger = 0
    socket.sndhwm = sndhwm
    socket.rcvhwm = rcvhwm
    socket.setsockopt(zmq.MAXMSGSIZE, max_msg_bytes)
    socket.setsockopt(zmq.HEARTBEAT_IVL, TRANSPORT_HEARTBEAT_IVL_MS)
    socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, TRANSPORT_HEARTBEAT_TIMEOUT_MS)
    socket.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    socket.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)


def file_sha256(path: str | os.PathLike, progress: ProgressCallback | None = None, block_bytes: int = MIB) -> str:
    """SHA-256 of a file as lowercase hex, read in blocks (``progress(done, total)`` after each one)."""
    digest = hashlib.sha256()
    total = os.path.getsize(path)
    done = 0
    with open(path, "rb") as handle:
        while block := handle.read(block_bytes):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def peer_endpoint(request_endpoint: str, reported: str) -> str:
    """The server's event endpoint as this client reaches it: the server reports what it bound
    (``tcp://0.0.0.0:5556`` or ``tcp://127.0.0.1:40123``); a TCP client keeps its own host and takes the port."""
    if request_endpoint.startswith("tcp://") and reported.startswith("tcp://"):
        host = request_endpoint[len("tcp://"):].rsplit(":", 1)[0]
        port = reported.rsplit(":", 1)[1]
        return f"tcp://{host}:{port}"
    return reported


class Client:
    """Request/reply client over a DEALER socket (see the module docstring for threading and retries).

    Args:
        endpoint: the server's request endpoint, e.g. ``"tcp://127.0.0.1:5555"``.
        timeout_s: how long to wait for each reply.
        keys: CurveZMQ keys when the server requires them (``ClientKeys.load(...)``).
        retries: how often an idempotent request is resent after a timeout.
        name: sent in ``hello`` (shows in the server's log).
        context: a ``zmq.Context`` to share; default ``zmq.Context.instance()``.
    """

    def __init__(self, endpoint: str = DEFAULT_REQUEST_ENDPOINT, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 keys: ClientKeys | None = None, retries: int = 1, name: str = "dyntet_protocol",
                 context: zmq.Context | None = None):
        if not isinstance(endpoint, str) or "://" not in endpoint:
            raise ValueError(f"endpoint must look like 'tcp://host:port', got {endpoint!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.endpoint = endpoint
        self.timeout_s = float(timeout_s)
        self.keys = keys
        self.retries = int(retries)
        self.name = name
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._session = secrets.token_hex(4)
        self._counter = 0
        self.server: ServerInfo | None = None
        """Set by :meth:`connect` / :meth:`hello`."""

    # --- connection ------------------------------------------------------------------------------

    def connect(self) -> ServerInfo:
        """Open the socket and negotiate with ``hello``. Raises ``unsupported_protocol`` when the server
        speaks another protocol version, ``timeout`` / ``auth_failed`` when it cannot be reached."""
        self._open()
        return self.hello()

    def close(self) -> None:
        """Close the sockets (idempotent). The context is left alone."""
        if self._monitor is not None:
            self._monitor.close(linger=0)
            self._monitor = None
        if self._socket is not None:
            try:
                self._socket.disable_monitor()
            except zmq.ZMQError:
                pass
            self._socket.close(linger=0)
            self._socket = None

    def reconnect(self) -> None:
        """A fresh socket: anything queued or in flight on the old one is dropped."""
        self.close()
        self._open()

    def __enter__(self) -> "Client":
        if self._socket is None:
            self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- generic requests ------------------------------------------------------------------------

    def request(self, request_type: str, params: dict[str, Any] | None = None, *,
                timeout_s: float | None = None) -> Reply:
        """Send one request and return its successful :class:`Reply` (result + buffers).

        Raises ProtocolError with the server's code when it answers with an error, or
        :class:`RequestTimeout` when no reply came (after ``retries`` for idempotent requests).
        """
        params = self._check(request_type, params)
        attempts = 1 + (self.retries if REQUESTS[request_type].idempotent else 0)
        for attempt in range(attempts):
            request_id = self._send(request_type, params)
            try:
                return self._receive({request_id}, timeout_s)
            except RequestTimeout:
                self.reconnect()
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def call(self, request_type: str, **params: Any) -> dict[str, Any]:
        """``request(...)`` returning only the result map."""
        return self.request(request_type, params).result

    # --- operations ------------------------------------------------------------------------------

    def hello(self) -> ServerInfo:
        """Version negotiation; stores and returns :class:`ServerInfo`."""
        result = self.call("hello", client=self.name[:128])
        try:
            self.server = ServerInfo(
                protocol=result["protocol"], server_version=result["server_version"],
                server_id=result["server_id"],
                events_endpoint=peer_endpoint(self.endpoint, result["events_endpoint"]),
                capabilities=result["capabilities"], job_kinds=result["job_kinds"], limits=result["limits"],
                heartbeat_interval_s=result["heartbeat_interval_s"], raw=result)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ProtocolError(ErrorCode.BAD_REPLY, f"hello reply lacks {exc}") from None
        if self.server.protocol != PROTOCOL_VERSION:
            raise ProtocolError(ErrorCode.UNSUPPORTED_PROTOCOL,
                                f"server speaks protocol {self.server.protocol}, this client {PROTOCOL_VERSION}")
        return self.server

    def ping(self) -> float:
        """Round-trip time in seconds."""
        start = time.perf_counter()
        self.call("ping")
        return time.perf_counter() - start

    def list_datasets(self) -> list[dict[str, Any]]:
        return self.call("list.datasets")["items"]

    def list_runs(self) -> list[dict[str, Any]]:
        return self.call("list.runs")["items"]

    def list_sequences(self) -> list[dict[str, Any]]:
        return self.call("list.sequences")["items"]

    def list_files(self, path: str = "") -> list[dict[str, Any]]:
        return self.call("list.files", path=path)["items"]

    def submit(self, kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Queue a job; returns its record (``record["id"]`` is the job id)."""
        return self.call("job.submit", kind=kind, params=params or {})["job"]

    def preprocess(self, video: str, out: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Queue preprocessing of ``video`` (workspace-relative) into the dataset folder ``out``."""
        return self.submit("preprocess", {"video": video, "out": out, "options": options or {}})

    def train(self, dataset: str, run: str, *, preset: str = "preview", overrides: dict[str, Any] | None = None,
              device: str = "auto") -> dict[str, Any]:
        """Queue training of ``dataset`` into the run folder ``run`` (both workspace-relative)."""
        return self.submit("train", {"dataset": dataset, "run": run, "preset": preset,
                                     "overrides": overrides or {}, "device": device})

    def job(self, job_id: str) -> dict[str, Any]:
        """The job's record, with ``log_tail``."""
        return self.call("job.status", job=job_id)["job"]

    def jobs(self, states: Iterable[str] = (), limit: int = 200) -> list[dict[str, Any]]:
        return self.call("job.list", states=list(states), limit=limit)["jobs"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.call("job.cancel", job=job_id)["job"]

    def resume(self, job_id: str) -> dict[str, Any]:
        return self.call("job.resume", job=job_id)["job"]

    def wait(self, job_id: str, timeout_s: float | None = None, poll_s: float = 0.2,
             until: Sequence[str] = TERMINAL_STATES) -> dict[str, Any]:
        """Poll until the job reaches a state in ``until``; returns the record. Raises
        :class:`RequestTimeout` when ``timeout_s`` passes first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            record = self.job(job_id)
            if record["state"] in until:
                return record
            if deadline is not None and time.monotonic() > deadline:
                raise RequestTimeout(f"job {job_id} still {record['state']} after {timeout_s} s",
                                     {"job": job_id, "state": record["state"]})
            time.sleep(poll_s)

    def shutdown(self) -> None:
        """Ask the server to stop."""
        self.call("shutdown")

    # --- bulk transfer ---------------------------------------------------------------------------

    def fetch_file(self, path: str, dest: str | os.PathLike, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                   window: int = 4, progress: ProgressCallback | None = None) -> Path:
        """Download a workspace file to ``dest`` in chunks (``window`` requests in flight).

        ``dest`` appears only when complete (written beside it, then renamed). Raises
        ``invalid_state`` when the file changes on the server during the transfer.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                for offset, chunk in self._file_chunks(path, chunk_bytes, window, progress):
                    handle.seek(offset)
                    handle.write(chunk)
            os.replace(tmp_name, dest)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        return dest

    def fetch_bytes(self, path: str, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES, window: int = 4) -> bytes:
        """A whole workspace file in memory (use :meth:`fetch_file` for big ones)."""
        parts: dict[int, bytes] = {}
        for offset, chunk in self._file_chunks(path, chunk_bytes, window, None):
            parts[offset] = bytes(chunk)
        return b"".join(parts[k] for k in sorted(parts))

    def array_info(self, path: str, array: str = "vertices") -> dict[str, Any]:
        """``{"dtype": str, "shape": [T, ...], "frame_bytes": int}`` of ``path/ARRAY.npy`` on the server."""
        return self.call("fetch.info", path=path, array=array)

    def fetch_frames(self, path: str, start: int = 0, stop: int | None = None, *, array: str = "vertices",
                     dtype: str = "float32", chunk_bytes: int = DEFAULT_CHUNK_BYTES, window: int = 4,
                     progress: ProgressCallback | None = None) -> np.ndarray:
        """Frames ``[start, stop)`` of ``path/ARRAY.npy`` (a sequence folder's ``vertices`` by default).

        Returns float32 or float16 (``dtype``) ``[stop - start, ...]``, e.g. ``[T, V, 3]`` for vertices.
        ``stop=None`` means to the end. Chunks of about ``chunk_bytes`` travel with ``window`` in flight.
        """
        info = self.array_info(path, array)
        total = int(info["shape"][0])
        stop = total if stop is None else stop
        if not 0 <= start <= stop <= total:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"frames [{start}, {stop}) are not within [0, {total})",
                                {"start": start, "stop": stop, "num_frames": total})
        itemsize = np.dtype(dtype).itemsize
        frame_shape = tuple(int(s) for s in info["shape"][1:])
        frame_bytes = math.prod(frame_shape) * itemsize
        if frame_bytes > MAX_CHUNK_BYTES:
            raise ProtocolError(ErrorCode.TOO_LARGE,
                                f"one frame is {frame_bytes} bytes; at most {MAX_CHUNK_BYTES} per chunk")
        per_chunk = max(1, min(chunk_bytes, MAX_CHUNK_BYTES) // max(frame_bytes, 1))
        out = np.empty((stop - start, *frame_shape), dtype=dtype)
        ranges = [(a, min(a + per_chunk, stop)) for a in range(start, stop, per_chunk)]

        def params(r: tuple[int, int]) -> dict[str, Any]:
            return {"path": path, "array": array, "start": r[0], "stop": r[1], "dtype": dtype}

        done = 0
        for (a, b), reply in self._pipeline("fetch.frames", ranges, params, window):
            if len(reply.buffers) != 1:
                raise ProtocolError(ErrorCode.BAD_REPLY,
                                    f"fetch.frames reply has {len(reply.buffers)} buffers, expected 1")
            out[a - start:b - start] = array_from_buffer(reply.buffers[0], reply.result["dtype"], reply.result["shape"])
            done += b - a
            if progress is not None:
                progress(done, stop - start)
        return out

    def upload(self, local_path: str | os.PathLike, remote_path: str, progress: ProgressCallback | None = None, *,
               window: int = 4, sha256: str | None = None, attempts: int = 5) -> dict[str, Any]:
        """Send a local file into the workspace as ``remote_path`` (``upload.*``, see ``docs/protocol.md``).

        The file is hashed (unless ``sha256`` is given), then sent in chunks with ``window`` in flight. A
        partial upload left by an earlier call or a lost connection is continued from the server's
        ``received``; a destination that already holds the same bytes costs no transfer. Timeouts and
        out-of-order refusals start again from ``upload.begin`` up to ``attempts`` times.

        Returns ``upload.finish``'s result (``path``, ``size``, ``sha256``, ``existing``) plus ``sent``: the
        bytes this call transferred. Raises ProtocolError (``invalid_state`` when the destination holds
        other content or the checksum does not match, ``no_space``, ``too_large``, ``path_refused`` …).
        """
        source = Path(local_path)
        size = source.stat().st_size
        digest = sha256 or file_sha256(source)
        bulk_timeout = self.timeout_s + size / HASH_BYTES_PER_S
        sent = [0]
        error: ProtocolError | None = None
        for _ in range(max(1, int(attempts))):
            begin = self.request("upload.begin", {"path": remote_path, "size": size, "sha256": digest},
                                 timeout_s=bulk_timeout).result
            try:
                if begin.get("complete"):
                    result = {"path": begin["path"], "size": begin["size"], "sha256": begin["sha256"],
                              "existing": True}
                else:
                    self._send_chunks(source, size, begin, window, progress, sent)
                    result = self.request("upload.finish", {"upload_id": begin["upload_id"]},
                                          timeout_s=bulk_timeout).result
            except RequestTimeout as exc:  # the socket is fresh; begin says how far the server got
                error = exc
                continue
            except ProtocolError as exc:
                if "received" not in exc.details:  # only an out-of-step upload is worth another begin
                    raise
                error = exc
                continue
            except KeyError as exc:
                raise ProtocolError(ErrorCode.BAD_REPLY, f"upload.begin reply lacks {exc}") from None
            if progress is not None:
                progress(size, size)
            return {**result, "sent": sent[0]}
        assert error is not None
        raise error

    # --- internals -------------------------------------------------------------------------------

    def _send_chunks(self, source: Path, size: int, begin: dict[str, Any], window: int,
                     progress: ProgressCallback | None, sent: list[int]) -> None:
        """Send ``source`` from the server's ``received`` to its end with up to ``window`` chunks in flight
        (the server takes them in order: one connection keeps the order). Adds acknowledged bytes to ``sent[0]``."""
        upload_id = begin["upload_id"]
        chunk_bytes = min(int(begin["chunk_bytes"]), MAX_UPLOAD_CHUNK_BYTES)
        start = int(begin["received"])
        if chunk_bytes <= 0 or not 0 <= start <= size:
            raise ProtocolError(ErrorCode.BAD_REPLY, f"upload.begin gave chunk_bytes {chunk_bytes}, received {start}")
        if progress is not None:
            progress(start, size)
        acknowledged = start
        in_flight: dict[str, int] = {}
        with open(source, "rb") as handle:
            handle.seek(start)
            offset = start
            try:
                while offset < size or in_flight:
                    while offset < size and len(in_flight) < max(1, int(window)):
                        data = handle.read(min(chunk_bytes, size - offset))
                        if not data:
                            raise ProtocolError(ErrorCode.INVALID_STATE, f"{source} shrank during the upload",
                                                {"path": str(source), "size": size, "offset": offset})
                        params = self._check("upload.chunk", {"upload_id": upload_id, "offset": offset, "data": data})
                        in_flight[self._send("upload.chunk", params)] = offset + len(data)
                        offset += len(data)
                    reply = self._receive(set(in_flight), None)
                    received = int(reply.result.get("received", in_flight[reply.id]))
                    del in_flight[reply.id]
                    sent[0] += max(0, received - acknowledged)
                    acknowledged = max(acknowledged, received)
                    if progress is not None:
                        progress(acknowledged, size)
            except RequestTimeout:
                self.reconnect()  # drop what is queued: the next begin tells where to continue
                raise

    def _open(self) -> None:
        socket = self._context.socket(zmq.DEALER)
        socket_options(socket, sndhwm=CLIENT_SNDHWM, rcvhwm=CLIENT_RCVHWM, max_msg_bytes=MAX_REPLY_BYTES)
        if self.keys is not None:
            self.keys.apply(socket)
        self._monitor = socket.get_monitor_socket(_HANDSHAKE_FAILURES)
        socket.connect(self.endpoint)
        self._socket = socket

    def _check(self, request_type: str, params: dict[str, Any] | None) -> dict[str, Any]:
        spec = REQUESTS.get(request_type)
        if spec is None:
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown request type {request_type!r}",
                                {"known": sorted(REQUESTS)})
        return spec.params.check(params or {}, "params")

    def _send(self, request_type: str, params: dict[str, Any]) -> str:
        if self._socket is None:
            self._open()
        self._counter += 1
        request_id = f"{self._session}-{self._counter}"
        try:
            self._socket.send_multipart(encode_request(request_type, params, request_id), flags=zmq.NOBLOCK)
        except zmq.Again:
            raise RequestTimeout(f"cannot send {request_type}: the outgoing queue is full (server unreachable?)",
                                 {"endpoint": self.endpoint}) from None
        return request_id

    def _receive(self, pending: set[str], timeout_s: float | None) -> Reply:
        """Wait for the reply to any id in ``pending``; discard others. Raises the reply's error."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(remaining * 1000, zmq.POLLIN):
                self._raise_timeout(timeout)
            reply = decode_reply(self._socket.recv_multipart(copy=False))
            if reply.id not in pending:
                continue  # late reply to an abandoned request
            if not reply.ok:
                raise reply.error
            return reply

    def _raise_timeout(self, timeout: float) -> None:
        failures: list[int] = []
        while self._monitor is not None and self._monitor.poll(0):
            failures.append(recv_monitor_message(self._monitor)["event"])
        if failures:
            hint = ("the server refused this client's key" if zmq.EVENT_HANDSHAKE_FAILED_AUTH in failures else
                    "the handshake failed: the server may require CurveZMQ keys, or these keys are wrong")
            raise ProtocolError(ErrorCode.AUTH_FAILED, f"cannot talk to {self.endpoint}: {hint}",
                                {"endpoint": self.endpoint})
        raise RequestTimeout(f"no reply from {self.endpoint} within {timeout:g} s", {"endpoint": self.endpoint})

    def _pipeline(self, request_type: str, items: list[Any], params: Callable[[Any], dict[str, Any]],
                  window: int) -> Iterable[tuple[Any, Reply]]:
        """Send one request per item with up to ``window`` in flight; yield ``(item, reply)`` as they
        arrive. After a timeout the socket is renewed and outstanding items are re-sent once."""
        window = max(1, int(window))
        queue = list(reversed(items))
        in_flight: dict[str, Any] = {}
        retried = False
        while queue or in_flight:
            while queue and len(in_flight) < window:
                item = queue.pop()
                in_flight[self._send(request_type, self._check(request_type, params(item)))] = item
            try:
                reply = self._receive(set(in_flight), None)
            except RequestTimeout:
                if retried or self.retries <= 0:
                    raise
                retried = True
                self.reconnect()
                queue.extend(reversed(list(in_flight.values())))
                in_flight.clear()
                continue
            yield in_flight.pop(reply.id), reply

    def _file_chunks(self, path: str, chunk_bytes: int, window: int,
                     progress: ProgressCallback | None) -> Iterable[tuple[int, Any]]:
        if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
            raise fail("chunk_bytes", f"integer in [1, {MAX_CHUNK_BYTES}]", chunk_bytes)
        first = self.request("fetch.file", {"path": path, "offset": 0, "length": chunk_bytes})
        size, stamp = first.result["size"], first.result["mtime_ns"]
        yield 0, first.buffers[0] if first.buffers else b""
        offsets = list(range(chunk_bytes, size, chunk_bytes))
        done = min(chunk_bytes, size)
        if progress is not None:
            progress(done, size)

        def params(offset: int) -> dict[str, Any]:
            return {"path": path, "offset": offset, "length": chunk_bytes}

        for offset, reply in self._pipeline("fetch.file", offsets, params, window):
            if reply.result["size"] != size or reply.result["mtime_ns"] != stamp:
                raise ProtocolError(ErrorCode.INVALID_STATE, f"{path} changed on the server during the transfer",
                                    {"path": path})
            yield offset, reply.buffers[0]
            done += reply.result["length"]
            if progress is not None:
                progress(done, size)
