"""One server per workspace, and a file telling local clients where it listens.

While a server runs it holds an exclusive lock on ``WORKSPACE/.dyntet/server.lock`` (released by the
OS if the process dies, even by SIGKILL) and keeps ``WORKSPACE/.dyntet/server.json`` up to date::

    {"pid": 1234, "server_id": "…", "requests": "tcp://127.0.0.1:5555", "events": "tcp://127.0.0.1:5556",
     "started": 1715000000.0, "protocol": 1, "secure": false}

The add-on reads it to reuse a running local backend (and checks the lock/pid to tell a stale file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dyntet.formats.atomic import write_json_atomic

LOCK_NAME = "server.lock"
INFO_NAME = "server.json"


class WorkspaceBusy(RuntimeError):
    """Another server already serves this workspace."""


class WorkspaceLock:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self._handle = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`WorkspaceBusy` naming the other server."""
        handle = open(self.state_dir / LOCK_NAME, "a+b")
        try:
            _lock(handle)
        except OSError:
            handle.close()
            other = read_server_info(self.state_dir)
            where = f" (pid {other.get('pid')}, {other.get('requests')})" if other else ""
            raise WorkspaceBusy(f"another dyntet server serves {self.state_dir.parent}{where}") from None
        self._handle = handle

    def publish(self, info: dict[str, Any]) -> None:
        write_json_atomic(self.state_dir / INFO_NAME, info)

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            (self.state_dir / INFO_NAME).unlink(missing_ok=True)
        finally:
            self._handle.close()  # closing drops the lock
            self._handle = None


def read_server_info(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
else:
    import fcntl

    def _lock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
