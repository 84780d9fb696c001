"""Subscribing to the server's events (PUB → SUB): progress, logs, previews, job outcomes, heartbeats.

An :class:`EventListener` owns one SUB socket. Use it from one thread: either call
:meth:`EventListener.poll` from your own loop (callbacks run in that thread), or :meth:`start` a
background thread that polls and runs the callbacks there. Subscriptions may be changed from any
thread; they are applied by the thread that owns the socket.

PUB/SUB drops events for slow subscribers and before the subscription is in place, so treat events
as notifications and ask ``job.status`` for the truth. ``seq`` counts per topic, so ``missed``
(gaps in it) tells how many events of the subscribed topics were lost.

Example::

    listener = EventListener(client.server.events_endpoint)
    listener.on(lambda ev: print(ev.type, ev.data), job=job_id)
    listener.subscribe_job(job_id)
    listener.start()            # callbacks now run on the listener's thread
    ...
    listener.close()
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import zmq

from .client import socket_options
from .constants import EVENT_SNDHWM, HEARTBEAT_INTERVAL_S, HEARTBEAT_LIVENESS, MAX_EVENT_BYTES
from .errors import ProtocolError
from .framing import JOB_TOPIC_PREFIX, SERVER_TOPIC, Event, decode_event, job_topic
from .keys import ClientKeys

EventCallback = Callable[[Event], None]


@dataclass
class _Handler:
    callback: EventCallback
    types: frozenset[str] | None
    job: str | None


class EventListener:
    """A SUB socket with callbacks and heartbeat tracking. Subscribes to server heartbeats at once.

    Args:
        endpoint: the event endpoint (``client.server.events_endpoint``).
        keys: CurveZMQ keys when the server requires them.
        context: a ``zmq.Context`` to share; default ``zmq.Context.instance()``.
    """

    def __init__(self, endpoint: str, *, keys: ClientKeys | None = None, context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.keys = keys
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._changes: queue.SimpleQueue[tuple[bool, bytes]] = queue.SimpleQueue()
        self._changes.put((True, SERVER_TOPIC))
        self._handlers: list[_Handler] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_seq: dict[tuple[str, bytes], int] = {}
        self.missed = 0
        """Events lost so far (gaps in ``seq``)."""
        self.last_heartbeat: Event | None = None
        self._last_heartbeat_at = 0.0
        self.errors = 0
        """Undecodable events dropped so far."""

    # --- subscriptions and callbacks (any thread) ------------------------------------------------

    def subscribe_job(self, job_id: str) -> None:
        self._changes.put((True, job_topic(job_id)))

    def unsubscribe_job(self, job_id: str) -> None:
        self._changes.put((False, job_topic(job_id)))

    def subscribe_all_jobs(self) -> None:
        self._changes.put((True, JOB_TOPIC_PREFIX))

    def on(self, callback: EventCallback, *, types: Iterable[str] | None = None, job: str | None = None) -> None:
        """Call ``callback(event)`` for events of ``types`` (all when None) of ``job`` (any when None).
        Callbacks run on the thread that polls; an exception in one is counted in ``errors`` and the
        others still run."""
        with self._lock:
            self._handlers.append(_Handler(callback, None if types is None else frozenset(types), job))

    @property
    def server_alive(self) -> bool:
        """A heartbeat arrived within ``HEARTBEAT_LIVENESS`` intervals."""
        interval = HEARTBEAT_INTERVAL_S
        if self.last_heartbeat is not None:
            interval = float(self.last_heartbeat.data.get("interval_s", interval))
        return time.monotonic() - self._last_heartbeat_at < HEARTBEAT_LIVENESS * interval

    # --- polling (the owning thread) -------------------------------------------------------------

    def poll(self, timeout_s: float = 0.0, max_events: int = 1000) -> list[Event]:
        """Receive what has arrived (waiting up to ``timeout_s`` for the first), run callbacks, return it."""
        socket = self._ensure_socket()
        events: list[Event] = []
        wait_ms = timeout_s * 1000
        while len(events) < max_events and socket.poll(wait_ms, zmq.POLLIN):
            wait_ms = 0
            frames = socket.recv_multipart(copy=False)
            try:
                event = decode_event(frames)
            except ProtocolError:
                self.errors += 1
                continue
            self._track(event)
            events.append(event)
            self._dispatch(event)
        return events

    def start(self) -> threading.Thread:
        """Poll on a background daemon thread until :meth:`close`; callbacks run on that thread."""
        if self._thread is not None:
            raise RuntimeError("listener thread already started")
        if self._socket is not None:
            raise RuntimeError("this listener was already polled from another thread; make a new one")
        self._thread = threading.Thread(target=self._run, name="dyntet-events", daemon=True)
        self._thread.start()
        return self._thread

    def close(self) -> None:
        """Stop the thread (if any) and close the socket."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
            self._thread = None
        elif self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def __enter__(self) -> "EventListener":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.poll(0.1)
        finally:
            if self._socket is not None:
                self._socket.close(linger=0)
                self._socket = None

    def _ensure_socket(self) -> zmq.Socket:
        if self._socket is None:
            socket = self._context.socket(zmq.SUB)
            socket_options(socket, sndhwm=EVENT_SNDHWM, rcvhwm=EVENT_SNDHWM, max_msg_bytes=MAX_EVENT_BYTES)
            if self.keys is not None:
                self.keys.apply(socket)
            socket.connect(self.endpoint)
            self._socket = socket
        while True:
            try:
                subscribe, topic = self._changes.get_nowait()
            except queue.Empty:
                break
            self._socket.setsockopt(zmq.SUBSCRIBE if subscribe else zmq.UNSUBSCRIBE, topic)
        return self._socket

    def _track(self, event: Event) -> None:
        key = (event.server, event.topic)
        last = self._last_seq.get(key)
        if last is not None and event.seq > last + 1:
            self.missed += event.seq - last - 1
        self._last_seq[key] = event.seq
        if event.type == "heartbeat":
            self.last_heartbeat = event
            self._last_heartbeat_at = time.monotonic()

    def _dispatch(self, event: Event) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for handler in handlers:
            if handler.types is not None and event.type not in handler.types:
                continue
            if handler.job is not None and event.job != handler.job:
                continue
            try:
                handler.callback(event)
            except Exception:  # a broken callback must not kill the listener thread
                self.errors += 1
