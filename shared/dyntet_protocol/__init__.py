"""Wire protocol between the Blender add-on and the DynTet backend.

Imports only numpy, msgpack and pyzmq: never torch, never bpy. ``docs/protocol.md`` is the spec.

Modules: ``constants`` (sizes, timing), ``errors`` (typed errors), ``codec`` (msgpack + numpy ext),
``schema`` (field validators), ``messages`` (the request catalogue), ``framing`` (frame layouts),
``keys`` (CurveZMQ key files), ``client`` (:class:`Client`), ``events`` (:class:`EventListener`).
"""

PROTOCOL_VERSION = 1
"""Bumped on any incompatible change of the message schema (independent of the package version)."""

SUPPORTED_PROTOCOLS = (1,)
"""Protocol versions this package can speak."""

__version__ = "0.1.0"

from .client import Client, ServerInfo  # noqa: E402  (PROTOCOL_VERSION must exist first)
from .errors import ErrorCode, ProtocolError, RequestTimeout  # noqa: E402
from .events import EventListener  # noqa: E402
from .framing import Event, Reply  # noqa: E402
from .keys import ClientKeys  # noqa: E402

__all__ = [
    "PROTOCOL_VERSION", "SUPPORTED_PROTOCOLS", "Client", "ServerInfo", "EventListener", "Event", "Reply",
    "ErrorCode", "ProtocolError", "RequestTimeout", "ClientKeys",
]
