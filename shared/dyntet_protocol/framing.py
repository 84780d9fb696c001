"""Frame layouts of requests, replies and events, and their strict decoding.

Frames as the *application* sees them (ZeroMQ adds/removes the routing-id frame on ROUTER)::

    request  (client DEALER → server ROUTER):  [MAGIC, body]
    reply    (server ROUTER → client DEALER):  [MAGIC, body, buffer_0, …, buffer_n]
    event    (server PUB    → client SUB):     [topic, MAGIC, body, buffer_0, …, buffer_n]

``body`` is one msgpack map:

    request  {"protocol": int, "id": str, "type": str, "params": map, "time"?: float}
    reply    {"protocol": int, "id": str | nil, "type": str | nil, "ok": true,  "result": map}
             {"protocol": int, "id": str | nil, "type": str | nil, "ok": false, "error": {code, message, details}}
    event    {"protocol": int, "type": str, "seq": int, "time": float, "server": str, "job": str | nil, "data": map}

Buffer frames carry bulk bytes (file chunks, arrays, preview PNGs); the body says what they hold.
A reply's ``id`` echoes the request's so a client can discard stale replies after a timeout; it is
nil only when the request was too broken to read one.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import PROTOCOL_VERSION, SUPPORTED_PROTOCOLS
from .codec import REPLY_LIMITS, REQUEST_LIMITS, Limits, packb, unpackb
from .constants import MAGIC, MAX_REQUEST_BYTES
from .errors import ErrorCode, ProtocolError
from .messages import JOB_ID_PATTERN, REQUEST_ID_PATTERN, REQUESTS
from .schema import Float, Int, Str, describe_value, fail

_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_HEADER_KEYS = frozenset({"protocol", "id", "type", "params", "time"})
SERVER_TOPIC = b"server"
"""Topic of server-wide events (heartbeats)."""
JOB_TOPIC_PREFIX = b"job."
"""Topic of a job's events is ``b"job." + job_id``; subscribe to ``b"job."`` for every job."""


def job_topic(job_id: str) -> bytes:
    if re.fullmatch(JOB_ID_PATTERN, job_id) is None:
        raise ValueError(f"not a job id: {job_id!r}")
    return JOB_TOPIC_PREFIX + job_id.encode("ascii")


@dataclass
class Request:
    """A request that passed header and parameter validation."""

    id: str
    type: str
    params: dict[str, Any]
    protocol: int = PROTOCOL_VERSION


@dataclass
class Reply:
    """A decoded reply; ``buffers`` are the frames after the body (bytes-like, possibly zero-copy)."""

    id: str | None
    type: str | None
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: ProtocolError | None = None
    buffers: list[Any] = field(default_factory=list)


@dataclass
class Event:
    """A decoded event. ``buffers`` hold e.g. the PNG bytes of a ``preview``."""

    type: str
    seq: int
    time: float
    server: str
    job: str | None
    data: dict[str, Any]
    topic: bytes = b""
    buffers: list[Any] = field(default_factory=list)


class BadMessage(Exception):
    """A request that cannot be served; carries what is known of it for the error reply."""

    def __init__(self, error: ProtocolError, request_id: str | None = None, request_type: str | None = None):
        super().__init__(str(error))
        self.error = error
        self.request_id = request_id
        self.request_type = request_type


# --- requests --------------------------------------------------------------------------------------

def encode_request(request_type: str, params: dict[str, Any], request_id: str,
                   protocol: int = PROTOCOL_VERSION) -> list[bytes]:
    """Frames of a request: ``[MAGIC, body]``."""
    body = {"protocol": protocol, "id": request_id, "type": request_type, "params": params,
            "time": time.time()}
    return [MAGIC, packb(body)]


def decode_request(frames: Sequence[bytes], limits: Limits = REQUEST_LIMITS) -> Request:
    """Validate ``[MAGIC, body]`` completely (frames, encoding, header, parameters).

    Raises :class:`BadMessage` holding a ProtocolError and the request id/type when they were readable.
    """
    if len(frames) < 2 or bytes(frames[0]) != MAGIC:
        first = bytes(frames[0][:16]) if frames else b""
        raise BadMessage(ProtocolError(
            ErrorCode.BAD_FRAMES, f"a request is [{MAGIC!r}, body]; got {len(frames)} frame(s) starting {first!r}",
            {"frames": len(frames)}))
    total = sum(len(f) for f in frames)
    if total > MAX_REQUEST_BYTES:
        raise BadMessage(ProtocolError(ErrorCode.TOO_LARGE, f"request of {total} bytes exceeds {MAX_REQUEST_BYTES}",
                                       {"limit": MAX_REQUEST_BYTES, "size": total}))
    try:
        body = unpackb(frames[1], limits)
    except ProtocolError as exc:
        raise BadMessage(exc) from None
    if not isinstance(body, dict):
        raise BadMessage(fail("body", "map", body))
    request_id = body.get("id")
    request_id = request_id if isinstance(request_id, str) and _REQUEST_ID.fullmatch(request_id) else None
    request_type = body.get("type")
    request_type = request_type if isinstance(request_type, str) and request_type in REQUESTS else None
    try:
        protocol = body.get("protocol")
        if isinstance(protocol, bool) or not isinstance(protocol, int) or protocol not in SUPPORTED_PROTOCOLS:
            raise ProtocolError(ErrorCode.UNSUPPORTED_PROTOCOL,
                                f"protocol {describe_value(protocol, 20)} is not supported; this end speaks "
                                f"{list(SUPPORTED_PROTOCOLS)}",
                                {"supported": list(SUPPORTED_PROTOCOLS), "got": describe_value(protocol, 20)})
        unknown = [k for k in body if k not in _HEADER_KEYS]
        if unknown:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"unknown header field(s) {[describe_value(k, 40) for k in unknown[:5]]}",
                                {"allowed": sorted(_HEADER_KEYS)})
        if request_id is None:
            raise fail("id", f"string matching {REQUEST_ID_PATTERN}", body.get("id"))
        if "time" in body:
            Float().check(body["time"], "time")
        Str(min_len=1, max_len=64).check(body.get("type"), "type")
        if len(frames) > 2:
            raise ProtocolError(ErrorCode.BAD_FRAMES,
                                f"{body['type'][:64]!r} takes no buffer frames; got {len(frames) - 2}",
                                {"frames": len(frames)})
        spec = REQUESTS.get(body["type"])
        if spec is None:
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown request type {body['type']!r}",
                                {"known": sorted(REQUESTS)})
        params = spec.params.check(body.get("params", {}), "params")
    except ProtocolError as exc:
        raise BadMessage(exc, request_id, request_type) from None
    return Request(request_id, body["type"], params, protocol)


# --- replies ---------------------------------------------------------------------------------------

def encode_reply(request_id: str | None, request_type: str | None, result: dict[str, Any],
                 buffers: Sequence[Any] = ()) -> list[Any]:
    """Frames of a success reply: ``[MAGIC, body, *buffers]`` (buffers are sent as they are)."""
    body = {"protocol": PROTOCOL_VERSION, "id": request_id, "type": request_type, "ok": True, "result": result}
    return [MAGIC, packb(body), *buffers]


def encode_error(request_id: str | None, request_type: str | None, error: ProtocolError) -> list[bytes]:
    """Frames of an error reply: ``[MAGIC, body]``."""
    body = {"protocol": PROTOCOL_VERSION, "id": request_id, "type": request_type, "ok": False,
            "error": error.to_wire()}
    return [MAGIC, packb(body)]


def decode_reply(frames: Sequence[Any], limits: Limits = REPLY_LIMITS) -> Reply:
    """Check and decode a reply (frames may be ``bytes`` or ``zmq.Frame``); raises ``bad_reply`` or
    ``unsupported_protocol`` ProtocolErrors."""
    raw = [_frame_bytes(f) for f in frames[:2]]
    if len(frames) < 2 or raw[0] != MAGIC:
        raise ProtocolError(ErrorCode.BAD_REPLY, f"a reply is [{MAGIC!r}, body, *buffers]; got {len(frames)} frame(s)")
    try:
        body = unpackb(raw[1], limits)
    except ProtocolError as exc:
        raise ProtocolError(ErrorCode.BAD_REPLY, f"undecodable reply: {exc.message}") from None
    if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
        raise ProtocolError(ErrorCode.BAD_REPLY, f"reply body is not a reply: {describe_value(body)}")
    if body.get("protocol") not in SUPPORTED_PROTOCOLS:
        raise ProtocolError(ErrorCode.UNSUPPORTED_PROTOCOL,
                            f"server speaks protocol {describe_value(body.get('protocol'), 20)}, this client "
                            f"{list(SUPPORTED_PROTOCOLS)}",
                            {"server": describe_value(body.get("protocol"),
                                                      20), "supported": list(SUPPORTED_PROTOCOLS)})
    request_id = body.get("id") if isinstance(body.get("id"), str) else None
    request_type = body.get("type") if isinstance(body.get("type"), str) else None
    buffers = [_frame_buffer(f) for f in frames[2:]]
    if body["ok"]:
        result = body.get("result")
        if not isinstance(result, dict):
            raise ProtocolError(ErrorCode.BAD_REPLY, "reply has ok=true but no result map")
        return Reply(request_id, request_type, True, result, None, buffers)
    return Reply(request_id, request_type, False, {}, ProtocolError.from_wire(body.get("error")), buffers)


# --- events ----------------------------------------------------------------------------------------

def encode_event(topic: bytes, event_type: str, seq: int, server_id: str, data: dict[str, Any],
                 job: str | None = None, buffers: Sequence[Any] = ()) -> list[Any]:
    """Frames of an event: ``[topic, MAGIC, body, *buffers]``."""
    body = {"protocol": PROTOCOL_VERSION, "type": event_type, "seq": seq, "time": time.time(),
            "server": server_id, "job": job, "data": data}
    return [topic, MAGIC, packb(body), *buffers]


def decode_event(frames: Sequence[Any], limits: Limits = REPLY_LIMITS) -> Event:
    """Check and decode an event; raises ``bad_reply`` ProtocolError when it does not follow the layout."""
    raw = [_frame_bytes(f) for f in frames[:3]]
    if len(frames) < 3 or raw[1] != MAGIC:
        raise ProtocolError(ErrorCode.BAD_REPLY, f"an event is [topic, {MAGIC!r}, body, *buffers]")
    body = unpackb(raw[2], limits)
    try:
        if not isinstance(body, dict):
            raise fail("event", "map", body, ErrorCode.BAD_REPLY)
        if body.get("protocol") not in SUPPORTED_PROTOCOLS:
            raise ProtocolError(ErrorCode.UNSUPPORTED_PROTOCOL,
                                f"event of protocol {describe_value(body.get('protocol'), 20)}")
        job = body.get("job")
        data = body.get("data")
        if (job is not None and not isinstance(job, str)) or not isinstance(data, dict):
            raise ProtocolError(ErrorCode.BAD_REPLY, "malformed event body (job or data)")
        return Event(Str().check(body.get("type"), "event.type"), Int(min=0).check(body.get("seq"), "event.seq"),
                     Float().check(body.get("time"), "event.time"), Str().check(body.get("server"), "event.server"),
                     job, data, raw[0], [_frame_buffer(f) for f in frames[3:]])
    except ProtocolError as exc:
        if exc.code == ErrorCode.BAD_REQUEST:
            raise ProtocolError(ErrorCode.BAD_REPLY, exc.message, exc.details) from None
        raise


def _frame_bytes(frame: Any) -> bytes:
    return frame.bytes if hasattr(frame, "bytes") else bytes(frame)


def _frame_buffer(frame: Any) -> Any:
    return frame.buffer if hasattr(frame, "buffer") else frame
