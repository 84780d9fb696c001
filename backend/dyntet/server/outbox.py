"""Replies the ROUTER could not take at once, kept per client in order and bounded in bytes.

Why: a ROUTER without ``ROUTER_MANDATORY`` silently drops a reply when it believes the client's
queue is full, and that belief lags behind reality (libzmq credits consumed messages in batches),
so even a client that reads every reply can lose one — seen here within the first hundred replies
of a fresh connection with ``SNDHWM=32``. With ``ROUTER_MANDATORY`` the send fails with ``EAGAIN``
instead; the reply waits here and is retried on the loop's next turn, after ZeroMQ has caught up.
A client that really stopped reading fills its backlog up to :data:`MAX_PEER_BYTES`, after which
its further replies are dropped; a client that is gone (``EHOSTUNREACH``) loses its backlog.
Memory per client is thus bounded by ``SNDHWM`` replies in ZeroMQ plus ``MAX_PEER_BYTES`` here.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Sequence

import zmq

log = logging.getLogger("dyntet.server")

MAX_PEER_BYTES = 64 * 1024 * 1024
"""Backlog per client before its replies are dropped."""
MAX_TOTAL_BYTES = 512 * 1024 * 1024
"""Backlog over all clients before new backlog is refused."""
MAX_AGE_S = 60.0
"""A backlog that has not moved for this long is discarded (the client stopped reading)."""
RETRY_S = 0.005
"""How soon the loop retries while something waits here."""


class Outbox:
    """FIFO backlog per routing id in front of a ROUTER socket with ``ROUTER_MANDATORY`` set."""

    def __init__(self, socket: zmq.Socket):
        self._socket = socket
        self._queues: dict[bytes, collections.deque[tuple[list[Any], int]]] = {}
        self._bytes: dict[bytes, int] = {}
        self._moved: dict[bytes, float] = {}
        self.total_bytes = 0
        self.dropped = 0
        """Replies dropped so far (client gone, or its backlog full)."""

    @property
    def pending(self) -> bool:
        return bool(self._queues)

    def send(self, identity: bytes, frames: Sequence[Any]) -> None:
        """Send now, or queue behind this client's earlier replies."""
        frames = list(frames)
        if identity not in self._queues:
            outcome = self._try(identity, frames)
            if outcome == "gone":
                self.dropped += 1
            if outcome != "again":
                return
        size = sum(memoryview(f).nbytes for f in frames)
        if self._bytes.get(identity, 0) + size > MAX_PEER_BYTES or self.total_bytes + size > MAX_TOTAL_BYTES:
            self.dropped += 1
            log.warning("dropping a reply of %d bytes: the client is not reading (backlog %d bytes)",
                        size, self._bytes.get(identity, 0))
            return
        self._queues.setdefault(identity, collections.deque()).append((frames, size))
        self._bytes[identity] = self._bytes.get(identity, 0) + size
        self._moved.setdefault(identity, time.monotonic())
        self.total_bytes += size

    def flush(self) -> None:
        """Retry every backlog in order; stop per client at the first reply that still does not fit."""
        now = time.monotonic()
        for identity in list(self._queues):
            queue = self._queues[identity]
            while queue:
                outcome = self._try(identity, queue[0][0])
                if outcome == "again":
                    break
                if outcome == "gone":
                    self._discard(identity)
                    break
                self._pop(identity)
                self._moved[identity] = now
            if identity in self._queues and not self._queues[identity]:
                self._forget(identity)
            elif identity in self._queues and now - self._moved[identity] > MAX_AGE_S:
                log.warning("discarding %d stuck replies for a client that stopped reading", len(queue))
                self._discard(identity)

    def _try(self, identity: bytes, frames: list[Any]) -> str:
        try:
            self._socket.send_multipart([identity, *frames], flags=zmq.NOBLOCK, copy=False)
            return "sent"
        except zmq.Again:
            return "again"
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                log.warning("could not reply: %s", exc)
            return "gone"

    def _pop(self, identity: bytes) -> None:
        _, size = self._queues[identity].popleft()
        self._bytes[identity] -= size
        self.total_bytes -= size

    def _discard(self, identity: bytes) -> None:
        self.dropped += len(self._queues[identity])
        self.total_bytes -= self._bytes[identity]
        self._forget(identity)

    def _forget(self, identity: bytes) -> None:
        self._queues.pop(identity, None)
        self._bytes.pop(identity, None)
        self._moved.pop(identity, None)
