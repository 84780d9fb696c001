"""Server settings (what ``dyntet serve`` turns its options into)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dyntet_protocol.constants import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_REQUEST_ENDPOINT, HEARTBEAT_INTERVAL_S

from .endpoints import events_endpoint_for, parse_endpoint


@dataclass
class ServerConfig:
    workspace: Path
    """The folder the server reads and writes; created when missing."""
    bind: str = DEFAULT_REQUEST_ENDPOINT
    """Request endpoint (ROUTER). ``tcp://127.0.0.1:*`` picks a free port (see ``server.json``)."""
    events: str | None = None
    """Event endpoint (PUB); default: the port after ``bind`` on the same host."""
    keys: Path | None = None
    """Key folder made by ``dyntet keys``; when set, both sockets require CurveZMQ and an allowed client key."""
    max_running: int = 1
    """Heavy jobs running at once; the rest wait in the queue."""
    max_queued: int = 100
    cancel_grace_s: float = 30.0
    """How long a cancelled job may take to save and stop before it is terminated."""
    shutdown_grace_s: float = 30.0
    """How long running jobs get to checkpoint when the server stops."""
    heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S
    probe_capabilities: bool = True
    """Find device/backends in a background subprocess (imports torch once)."""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    """Largest file a client may send with ``upload.*`` (0 refuses every non-empty upload)."""
    cluster: str = "local"
    """Where heavy jobs run: ``local`` (processes of this machine), ``auto`` (the Ray cluster this machine
    is part of), ``ray://HOST:PORT`` or ``HOST:PORT`` of a Ray head (see ``jobs/executor.py``)."""

    def __post_init__(self) -> None:
        self.workspace = Path(self.workspace)
        if self.keys is not None:
            self.keys = Path(self.keys)
        if self.events is None:
            self.events = events_endpoint_for(self.bind)
        parse_endpoint(self.bind)
        parse_endpoint(self.events)
        if self.bind == self.events and "*" not in self.bind:
            raise ValueError(f"the request and event endpoints must differ, both are {self.bind}")
        if self.max_running < 1 or self.max_queued < 0:
            raise ValueError(f"max_running must be ≥ 1 and max_queued ≥ 0, "
                             f"got {self.max_running}, {self.max_queued}")
        if not 0.05 <= self.heartbeat_interval_s <= 60:
            raise ValueError(f"heartbeat_interval_s must be in [0.05, 60], got {self.heartbeat_interval_s}")
        if self.cancel_grace_s < 0 or self.shutdown_grace_s < 0:
            raise ValueError("grace periods must be ≥ 0")
        if self.max_upload_bytes < 0:
            raise ValueError(f"max_upload_bytes must be ≥ 0, got {self.max_upload_bytes}")
