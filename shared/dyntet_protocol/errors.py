"""Typed errors: every failure crosses the wire as ``{code, message, details}``.

``code`` is one of :class:`ErrorCode` (stable, for programs); ``message`` is one human-readable
sentence (for people); ``details`` is a map of facts (field names, limits, what arrived).
"""

from __future__ import annotations

import enum
from typing import Any, Mapping


class ErrorCode(str, enum.Enum):
    """Error codes. Request errors are answered in a reply; job errors appear in job records/events."""

    # -- the message itself ------------------------------------------------------------------------
    BAD_FRAMES = "bad_frames"
    """Wrong number of frames, or the first frame is not ``MAGIC``."""
    BAD_ENCODING = "bad_encoding"
    """The body is not valid msgpack (truncated, trailing bytes, bad UTF-8, unknown ext type …)."""
    TOO_LARGE = "too_large"
    """A frame, string, array or requested range exceeds a limit; ``details`` names the limit."""
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    """The ``protocol`` field names a version this end does not speak; ``details.supported`` lists them."""
    BAD_REQUEST = "bad_request"
    """A header or parameter field is missing, unknown, of the wrong type or out of range."""
    UNKNOWN_TYPE = "unknown_type"
    """No handler for this message type."""
    # -- what the request asks for -----------------------------------------------------------------
    PATH_REFUSED = "path_refused"
    """A path is absolute, has ``..`` or hidden parts, or resolves outside the workspace."""
    NOT_FOUND = "not_found"
    """A path, job or array named by the request does not exist."""
    INVALID_STATE = "invalid_state"
    """The operation does not apply now (cancel a finished job, resume a running one, …)."""
    QUEUE_FULL = "queue_full"
    """Too many jobs waiting."""
    UNAVAILABLE = "unavailable"
    """The operation needs a part that this backend does not have (e.g. training not installed)."""
    NO_SPACE = "no_space"
    """The server's disk has no room for an upload; ``details.needed`` and ``details.free`` are bytes."""
    SHUTTING_DOWN = "shutting_down"
    """The server is stopping and accepts no new work."""
    INTERNAL = "internal"
    """A bug in the server; the request may be retried. The server keeps running."""
    # -- job outcomes (records and ``failed`` events) ----------------------------------------------
    JOB_FAILED = "job_failed"
    """The job raised an exception; ``details`` has its type and traceback."""
    OUT_OF_MEMORY = "out_of_memory"
    """The job raised ``MemoryError``."""
    JOB_CRASHED = "job_crashed"
    """The job's process died without reporting (signal, native crash, OOM killer)."""
    # -- raised by the client only -----------------------------------------------------------------
    TIMEOUT = "timeout"
    """No reply within the client's timeout (server down, unreachable, or refused our keys)."""
    AUTH_FAILED = "auth_failed"
    """The CurveZMQ handshake failed: the server requires keys, or does not accept this client's key."""
    BAD_REPLY = "bad_reply"
    """The server's reply did not follow the protocol."""


class ProtocolError(Exception):
    """An error with a code from :class:`ErrorCode`; what a server answers and what a client raises."""

    def __init__(self, code: ErrorCode | str, message: str, details: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.code = ErrorCode(code) if code in _CODES else code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_wire(self) -> dict[str, Any]:
        """The ``error`` map of a reply: ``{"code": str, "message": str, "details": map}``."""
        code = self.code.value if isinstance(self.code, ErrorCode) else str(self.code)
        return {"code": code, "message": self.message, "details": self.details}

    @classmethod
    def from_wire(cls, error: Any) -> "ProtocolError":
        """Rebuild from a reply's ``error`` map; a malformed map becomes a ``bad_reply`` error."""
        if not isinstance(error, dict) or not isinstance(error.get("code"), str) \
                or not isinstance(error.get("message"), str):
            return cls(ErrorCode.BAD_REPLY, f"malformed error in reply ({type(error).__name__})")
        details = error.get("details")
        return cls(error["code"], error["message"], details if isinstance(details, dict) else {})

    def __str__(self) -> str:
        code = self.code.value if isinstance(self.code, ErrorCode) else self.code
        return f"[{code}] {self.message}"

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.message!r}, {self.details!r})"


class RequestTimeout(ProtocolError, TimeoutError):
    """No reply in time. Also a :class:`TimeoutError` so generic handlers catch it."""

    def __init__(self, message: str, details: Mapping[str, Any] | None = None):
        super().__init__(ErrorCode.TIMEOUT, message, details)


_CODES = frozenset(code.value for code in ErrorCode)
