"""The server: a ROUTER for requests, a PUB for events, one single-threaded loop.

The loop polls the ROUTER and the job manager's inbox, answers every request (a typed error for
anything malformed — it never raises out of the loop), forwards job news as events, and publishes
a heartbeat every ``heartbeat_interval_s``. Sends never block: a reply the ROUTER cannot take yet waits in a
bounded per-client backlog (``outbox.py``), the PUB drops events for slow subscribers.

Shutdown (``shutdown`` request, SIGINT/SIGTERM via :meth:`Server.request_shutdown`): new work is
refused, running jobs are asked to stop and checkpoint, requests are still answered meanwhile, and
after ``shutdown_grace_s`` whatever still runs is killed and marked ``interrupted``.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from typing import Any

import zmq

from dyntet_protocol import PROTOCOL_VERSION
from dyntet_protocol.client import socket_options
from dyntet_protocol.constants import (
    EVENT_SNDHWM, MAX_REQUEST_BYTES, SERVER_RCVHWM, SERVER_SNDHWM,
)
from dyntet_protocol.errors import ErrorCode, ProtocolError
from dyntet_protocol.framing import (
    SERVER_TOPIC, BadMessage, decode_request, encode_error, encode_event, encode_reply, job_topic,
)

from .capabilities import CapabilityProbe
from .config import ServerConfig
from .endpoints import EndpointError, check_bind_policy, parse_endpoint
from .handlers import HANDLERS
from .jobs.executor import make_executor
from .jobs.manager import JobManager
from .jobs.store import JobStore
from .keystore import KeyStore
from .lock import WorkspaceLock
from .outbox import RETRY_S, Outbox
from .security import CurveGuard
from .uploads import Uploads
from .workspace import Workspace

log = logging.getLogger("dyntet.server")

TICK_S = 0.1
"""Longest the loop sleeps between duties (stop requests, cancel escalation)."""
REQUESTS_PER_TURN = 256
"""Requests handled before the loop looks at jobs and heartbeats again."""
SUBSCRIPTION_RCVHWM = 1000
"""Inbound queue of the PUB socket (subscriptions). Not 1: with CURVE a PUB whose RCVHWM is 1 never
sees its subscribers' subscriptions (observed with libzmq 4.3.5)."""


class Server:
    """``start()`` binds; ``serve_forever()`` runs until shutdown; ``close()`` releases everything."""

    def __init__(self, config: ServerConfig, context: zmq.Context | None = None):
        self.config = config
        self.log = log
        self.server_id = secrets.token_hex(8)
        self.started = time.time()
        self.secure = config.keys is not None
        self.workspace = Workspace(config.workspace)
        self.uploads = Uploads(self.workspace, config.max_upload_bytes)
        self.capabilities = CapabilityProbe(config.probe_capabilities)
        self.context = context or zmq.Context()
        self._own_context = context is None
        self._lock = WorkspaceLock(self.workspace.state_dir)
        self._guard: CurveGuard | None = None
        self._router: zmq.Socket | None = None
        self._pub: zmq.Socket | None = None
        self._outbox: Outbox | None = None
        self.jobs: JobManager | None = None
        self._seq: dict[bytes, int] = {}
        self._stop_reason: str | None = None
        self.request_endpoint = ""
        self.events_endpoint = ""
        self.stats = {"requests": 0, "errors": 0, "malformed": 0}

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Check the bind policy, lock the workspace, bind, load job records. Raises
        :class:`~dyntet.server.endpoints.EndpointError`, ``WorkspaceBusy`` or ``KeyFileError``."""
        check_bind_policy([self.config.bind, self.config.events], self.secure)
        self._lock.acquire()
        try:
            if self.secure:
                self._guard = CurveGuard(self.context, KeyStore(self.config.keys))
                self._guard.start()
            self._router = self._socket(zmq.ROUTER, SERVER_SNDHWM, SERVER_RCVHWM, MAX_REQUEST_BYTES)
            self._router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # report full/unknown peers: see outbox.py
            self._outbox = Outbox(self._router)
            self._pub = self._socket(zmq.PUB, EVENT_SNDHWM, SUBSCRIPTION_RCVHWM, MAX_REQUEST_BYTES)
            self.request_endpoint = self._bind(self._router, self.config.bind)
            self.events_endpoint = self._bind(self._pub, self.config.events)
            self.jobs = JobManager(self.workspace, JobStore(self.workspace.state_dir / "jobs"), self.context,
                                   self.publish, max_running=self.config.max_running,
                                   max_queued=self.config.max_queued, cancel_grace_s=self.config.cancel_grace_s,
                                   executor=make_executor(self.config.cluster))
            self.jobs.load()
            self._lock.publish({"pid": os.getpid(), "server_id": self.server_id, "requests": self.request_endpoint,
                                "events": self.events_endpoint, "started": self.started,
                                "protocol": PROTOCOL_VERSION, "secure": self.secure})
        except BaseException:
            self.close()
            raise
        self.capabilities.start()
        log.info("serving %s: requests %s, events %s%s", self.workspace.root, self.request_endpoint,
                 self.events_endpoint, " (CurveZMQ)" if self.secure else "")

    def serve_forever(self) -> None:
        """Run the loop until a shutdown was requested and running jobs have stopped."""
        if self._router is None:
            raise RuntimeError("call start() first")
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self.jobs.socket, zmq.POLLIN)
        next_heartbeat = time.monotonic()
        shutdown_deadline: float | None = None
        self.jobs.schedule()
        while True:
            if self._stop_reason is not None and shutdown_deadline is None:
                log.info("stopping: %s", self._stop_reason)
                shutdown_deadline = self.jobs.begin_shutdown(self.config.shutdown_grace_s)
                self._heartbeat()
            if shutdown_deadline is not None and (not self.jobs.running or time.monotonic() > shutdown_deadline):
                break
            now = time.monotonic()
            wait = min(next_heartbeat - now, RETRY_S if self._outbox.pending else TICK_S)
            for socket, _ in poller.poll(max(0.0, wait) * 1000):
                if socket is self._router:
                    self._serve_requests()
                else:
                    self.jobs.drain()
            self._outbox.flush()
            self.jobs.tick()
            if time.monotonic() >= next_heartbeat:
                self._heartbeat()
                next_heartbeat = time.monotonic() + self.config.heartbeat_interval_s
        self.jobs.finish_shutdown()
        self._serve_requests()  # answer what arrived meanwhile
        deadline = time.monotonic() + 1.0
        while self._outbox.pending and time.monotonic() < deadline:
            self._outbox.flush()
            time.sleep(RETRY_S)
        log.info("stopped")

    def request_shutdown(self, reason: str = "shutdown requested") -> None:
        """Ask the loop to stop (safe from signal handlers and other threads: one assignment)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    def refuse_new_work(self) -> None:
        if self._stop_reason is not None:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN, "the server is shutting down and accepts no new jobs")

    def close(self) -> None:
        """Close sockets, stop the authenticator, release the workspace (idempotent). Jobs still running
        (only after an unexpected error: ``serve_forever`` stops them) are killed and marked interrupted."""
        if self.jobs is not None:
            if self.jobs.running:
                self.jobs.begin_shutdown(0)
                self.jobs.finish_shutdown()
            self.jobs.close()
            self.jobs.executor.close()
            self.jobs = None
        for socket in (self._router, self._pub):
            if socket is not None:
                socket.close(linger=0)
        self._router = self._pub = None
        if self._guard is not None:
            self._guard.stop()
            self._guard = None
        self._lock.release()
        if self._own_context:
            self.context.term()

    # --- events ----------------------------------------------------------------------------------

    def publish(self, job_id: str | None, event_type: str, data: dict[str, Any], buffers: list[Any] = ()) -> None:
        """Publish one event on the job's topic (or the server topic); dropped if nobody keeps up."""
        if self._pub is None:
            return
        topic = job_topic(job_id) if job_id else SERVER_TOPIC
        seq = self._seq[topic] = self._seq.get(topic, 0) + 1
        try:
            self._pub.send_multipart(encode_event(topic, event_type, seq, self.server_id, data, job_id, buffers),
                                     flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass

    def _heartbeat(self) -> None:
        jobs = self.jobs
        self.publish(None, "heartbeat", {
            "interval_s": self.config.heartbeat_interval_s, "uptime_s": time.time() - self.started,
            "running": sorted(jobs.running), "queued": len(jobs.queue), "stopping": self.stopping,
            "capabilities_ready": bool(self.capabilities.result.get("ready")),
        })

    # --- requests --------------------------------------------------------------------------------

    def _serve_requests(self) -> None:
        for _ in range(REQUESTS_PER_TURN):
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._answer(frames)

    def _answer(self, frames: list[bytes]) -> None:
        identity, body = frames[0], frames[1:]
        self.stats["requests"] += 1
        try:
            request = decode_request(body)
        except BadMessage as bad:
            self.stats["malformed"] += 1
            reply = encode_error(bad.request_id, bad.request_type, bad.error)
        except Exception as exc:  # a decoder bug must cost one request, not the server
            self.stats["malformed"] += 1
            log.exception("could not decode a request")
            reply = encode_error(None, None, ProtocolError(ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}"))
        else:
            try:
                result, buffers = HANDLERS[request.type](self, request.params)
                reply = encode_reply(request.id, request.type, result, buffers)
            except ProtocolError as exc:
                self.stats["errors"] += 1
                reply = encode_error(request.id, request.type, exc)
            except Exception as exc:  # a bug in a handler must cost one request, not the server
                self.stats["errors"] += 1
                log.exception("request %s (%s) failed", request.id, request.type)
                reply = encode_error(request.id, request.type, ProtocolError(
                    ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}: {str(exc)[:300]}"))
        self._outbox.send(identity, reply)

    # --- helpers ---------------------------------------------------------------------------------

    def _socket(self, kind: int, sndhwm: int, rcvhwm: int, max_msg_bytes: int) -> zmq.Socket:
        socket = self.context.socket(kind)
        socket_options(socket, sndhwm=sndhwm, rcvhwm=rcvhwm, max_msg_bytes=max_msg_bytes)
        if self._guard is not None:
            self._guard.apply(socket)
        return socket

    def _bind(self, socket: zmq.Socket, endpoint: str) -> str:
        if endpoint.startswith("tcp://[") or endpoint.startswith("tcp://::"):
            socket.ipv6 = True
        try:
            socket.bind(endpoint)
        except zmq.ZMQError as exc:
            raise EndpointError(f"cannot bind {endpoint}: {exc}") from None
        actual = socket.last_endpoint.decode()
        if not self.secure and not parse_endpoint(actual).is_local:  # e.g. a host name that resolved elsewhere
            raise EndpointError(f"{endpoint} bound {actual}, which is not a loopback address; "
                                "refusing without CurveZMQ")
        return actual
