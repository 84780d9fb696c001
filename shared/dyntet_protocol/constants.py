"""Named constants of the wire protocol: frame markers, sizes, timing.

Sizes are bytes; times are seconds. Both ends read these, so a change here is a protocol change
only where the document (``docs/protocol.md``) says so; limits may grow without a version bump.
"""

from __future__ import annotations

MAGIC = b"DYNTET"
"""Frame that opens every request and reply (after ZeroMQ's routing frames) and follows the topic
of every event. A peer that does not send it is not speaking this protocol."""

DEFAULT_REQUEST_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_EVENT_ENDPOINT = "tcp://127.0.0.1:5556"

# --- sizes -----------------------------------------------------------------------------------------
KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB

MAX_REQUEST_BYTES = 1 * MIB
"""Largest request frame the server accepts (``zmq.MAXMSGSIZE`` on its ROUTER: a bigger frame makes
libzmq drop the connection). Requests carry names and numbers, never bulk data."""
MAX_CHUNK_BYTES = 16 * MIB
"""Largest payload of one ``fetch.file`` / ``fetch.frames`` reply."""
DEFAULT_CHUNK_BYTES = 8 * MIB
"""Payload per chunk the :class:`~dyntet_protocol.client.Client` asks for by default."""
MAX_UPLOAD_CHUNK_BYTES = MAX_REQUEST_BYTES - 64 * KIB
"""Largest ``data`` of one ``upload.chunk``. Requests carry no buffer frames, so the bytes travel inside the
body, which must stay under :data:`MAX_REQUEST_BYTES` with room for the header (a bigger frame is dropped
by libzmq, not answered)."""
DEFAULT_MAX_UPLOAD_BYTES = 8 * GIB
"""Largest file a server accepts through ``upload.*`` unless configured otherwise (``--max-upload-gib``)."""
MAX_REPLY_BYTES = MAX_CHUNK_BYTES + 1 * MIB
"""Largest reply frame a client accepts (``zmq.MAXMSGSIZE`` on its DEALER)."""
MAX_EVENT_BYTES = 16 * MIB
"""Largest event frame a subscriber accepts (a preview PNG is the biggest event)."""
MAX_PREVIEW_BYTES = 8 * MIB
"""Preview images above this size are announced without their bytes."""
MAX_STRING_CHARS = 64 * KIB
"""Longest msgpack string inside a body."""
MAX_CONTAINER_ITEMS = 100_000
"""Longest msgpack array / map inside a body."""
MAX_INLINE_ARRAY_BYTES = 16 * MIB
"""Largest numpy array carried inside a body as a msgpack ext (bigger ones use buffer frames)."""

# --- queues ----------------------------------------------------------------------------------------
SERVER_SNDHWM = 16
"""Replies queued in ZeroMQ per client; beyond it replies wait in the server's bounded backlog
(see ``dyntet/server/outbox.py``), so a client that stops reading costs the server at most
``SERVER_SNDHWM × MAX_REPLY_BYTES`` plus that backlog."""
SERVER_RCVHWM = 1000
EVENT_SNDHWM = 256
"""Events queued per subscriber before the PUB socket drops (slow subscribers lose events, never
block the server)."""
CLIENT_SNDHWM = 1000
CLIENT_RCVHWM = 64

# --- timing ----------------------------------------------------------------------------------------
HEARTBEAT_INTERVAL_S = 1.0
"""The server publishes a ``heartbeat`` event this often."""
HEARTBEAT_LIVENESS = 3
"""Missed heartbeats after which a subscriber considers the server gone."""
TRANSPORT_HEARTBEAT_IVL_MS = 5_000
"""ZMTP-level ping interval (``zmq.HEARTBEAT_IVL``): lets both ends notice a dead TCP peer."""
TRANSPORT_HEARTBEAT_TIMEOUT_MS = 15_000
DEFAULT_TIMEOUT_S = 10.0
"""How long the client waits for one reply before reconnecting."""
RECONNECT_IVL_MS = 100
RECONNECT_IVL_MAX_MS = 2_000
