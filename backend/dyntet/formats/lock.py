"""One writer per folder: a run or dataset folder is locked while a process writes it.

The lock is an ``flock`` on ``FOLDER/.lock`` (the OS releases it when the holder dies, even by SIGKILL, so
a stale file never blocks anyone); the file holds the holder's PID and command so the second writer's
error can name them.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path
from types import TracebackType

LOCK_NAME = ".lock"


class FolderBusy(RuntimeError):
    """Another live process is writing this folder."""


class FolderLock:
    """``with FolderLock(folder, "training"):`` — exclusive while the block runs."""

    def __init__(self, folder: Path, activity: str) -> None:
        self.folder = Path(folder)
        self.activity = activity
        self._handle: int | None = None

    def __enter__(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(handle)
            os.close(handle)
            raise FolderBusy(
                f"{self.folder} is being written by another process ({holder}); wait for it to finish or stop it, "
                f"then try again — two writers would interleave their files") from None
        os.ftruncate(handle, 0)
        os.write(handle, json.dumps({"pid": os.getpid(), "activity": self.activity,
                                     "command": " ".join(sys.argv)[:200]}).encode())
        self._handle = handle
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            os.close(self._handle)
            self._handle = None


def _read_holder(handle: int) -> str:
    try:
        info = json.loads(os.pread(handle, 4096, 0) or b"{}")
        return f"PID {info['pid']}, {info.get('activity', 'writing')}: {info.get('command', '?')}"
    except (OSError, ValueError, KeyError, TypeError):
        return "PID unknown"
