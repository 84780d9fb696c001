"""Start, find and stop a local ``dyntet serve`` process. No ``bpy``: called from the worker thread.

A small JSON record (``backend.json`` in the add-on's user folder) remembers the process this or an
earlier Blender started: pid, endpoints, workspace, command. On the next start the record tells us
whether a backend is already running (reuse it if it answers ``hello``), died (forget it) or hangs
(replace it). A pid is only ever signalled when the process's command line still names ``serve`` and
``dyntet``, so a recycled pid of an unrelated program is never killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RECORD_NAME = "backend.json"
LOG_NAME = "backend.log"
SERVER_FILE = Path(".dyntet") / "server.json"
"""Where a running ``dyntet serve`` says where it listens (``docs/protocol.md`` §1); one per workspace."""


class BackendSetupError(RuntimeError):
    """The local backend cannot be started; the message says what to change."""


@dataclass(frozen=True)
class LocalConfig:
    """How to run the local backend."""

    python: str
    """Interpreter with ``dyntet`` installed; empty: the ``dyntet`` executable on PATH."""
    workspace: Path
    request_endpoint: str = "tcp://127.0.0.1:5555"
    event_endpoint: str = "tcp://127.0.0.1:5556"
    state_dir: Path = Path(".")
    """Where the record and the log live (the add-on's user folder)."""

    def command(self) -> list[str]:
        """The serve command line."""
        return [
            *base_command(self.python),
            "serve",
            "--workspace",
            str(self.workspace),
            "--bind",
            self.request_endpoint,
            "--events",
            self.event_endpoint,
        ]


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    request_endpoint: str
    event_endpoint: str
    workspace: str
    command: list[str]
    started: float
    log_path: str
    owner_pid: int = 0
    """The Blender process that started it: only that process stops it when it quits."""


def base_command(python: str) -> list[str]:
    """``[python, -m, dyntet.cli]`` when an interpreter is given, else the ``dyntet`` executable."""
    if python:
        if not Path(python).is_file():
            raise BackendSetupError(
                f"Backend Python {python!r} does not exist: set it in the add-on preferences to the python "
                "of the environment where dyntet is installed"
            )
        return [python, "-m", "dyntet.cli"]
    found = shutil.which("dyntet")
    if found is None:
        raise BackendSetupError(
            "No backend found: set 'Backend Python' in the add-on preferences to the python of the environment "
            "where dyntet is installed (or put the 'dyntet' command on PATH)"
        )
    return [found]


class LocalBackend:
    """The local backend process: start, stop, and the record that survives Blender restarts."""

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self._process: subprocess.Popen | None = None
        self._log = None

    @property
    def record_path(self) -> Path:
        return self.config.state_dir / RECORD_NAME

    @property
    def log_path(self) -> Path:
        return self.config.state_dir / LOG_NAME

    @property
    def started_here(self) -> bool:
        """Whether this Blender session started the running process (and so stops it on quit)."""
        return self._process is not None and self._process.poll() is None

    # -- record ---------------------------------------------------------------------------------------

    def read_record(self) -> ProcessRecord | None:
        try:
            data = json.loads(self.record_path.read_text(encoding="utf-8"))
            return ProcessRecord(**data)
        except (OSError, ValueError, TypeError):
            return None

    def _write_record(self, record: ProcessRecord) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.record_path.with_suffix(".part")
        tmp.write_text(json.dumps(asdict(record), indent=1), encoding="utf-8")
        os.replace(tmp, self.record_path)

    def forget(self) -> None:
        """Delete the record (the process it names is gone)."""
        try:
            self.record_path.unlink()
        except FileNotFoundError:
            pass

    def existing(self) -> ProcessRecord | None:
        """The recorded process if it still runs *our* backend on the configured endpoint; a record of a
        dead process is forgotten."""
        record = self.read_record()
        if record is None:
            return None
        if not is_backend_process(record.pid):
            self.forget()
            return None
        if record.request_endpoint != self.config.request_endpoint:
            return None
        return record

    def workspace_server(self) -> tuple[int, str] | None:
        """``(pid, request endpoint)`` of a live server already serving the workspace (started by anyone,
        e.g. from a terminal), from its ``.dyntet/server.json``; None when there is none.

        A workspace has at most one server (it holds a lock), so starting a second one would fail."""
        try:
            data = json.loads((self.config.workspace / SERVER_FILE).read_text(encoding="utf-8"))
            pid, endpoint = int(data["pid"]), str(data["requests"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not endpoint.startswith("tcp://") or not is_backend_process(pid):
            return None
        return pid, endpoint

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> ProcessRecord:
        """Spawn ``dyntet serve`` detached from Blender's console; stdout and stderr go to the log.

        Raises:
            BackendSetupError: no interpreter / executable, or the process could not be spawned.
        """
        command = self.config.command()
        self.config.workspace.mkdir(parents=True, exist_ok=True)
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        self._log.flush()
        flags: dict = {}
        if sys.platform == "win32":
            flags["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        else:
            flags["start_new_session"] = True  # Ctrl-C in Blender's terminal does not reach it
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        for leaked in ("PYTHONHOME", "PYTHONPATH"):  # Blender's own Python settings must not leak in
            env.pop(leaked, None)
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env, **flags
            )
        except OSError as exc:
            self._close_log()
            raise BackendSetupError(f"cannot start the backend ({' '.join(command)}): {exc}") from exc
        record = ProcessRecord(
            pid=self._process.pid,
            request_endpoint=self.config.request_endpoint,
            event_endpoint=self.config.event_endpoint,
            workspace=str(self.config.workspace),
            command=command,
            started=time.time(),
            log_path=str(self.log_path),
            owner_pid=os.getpid(),
        )
        self._write_record(record)
        return record

    def exit_code(self) -> int | None:
        """The started process's exit code, None while it runs (or when we did not start one)."""
        return None if self._process is None else self._process.poll()

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, pid: int | None = None, timeout_s: float = 5.0) -> None:
        """Terminate the backend (ours, or the recorded one given by ``pid``), then kill after ``timeout_s``."""
        if self._process is not None and (pid is None or pid == self._process.pid):
            process = self._process
            if process.poll() is None:
                _terminate(process.pid)
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    _kill(process.pid)
                    process.wait(timeout_s)
            self._process = None
            self._close_log()
            self.forget()
            return
        if pid is not None and is_backend_process(pid):
            _terminate(pid)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and is_backend_process(pid):
                time.sleep(0.05)
            if is_backend_process(pid):
                _kill(pid)
        record = self.read_record()
        if record is not None and record.pid == pid:
            self.forget()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def stop_owned(state_dir: Path, owner_pid: int, timeout_s: float = 5.0) -> int:
    """Stop the recorded backend if ``owner_pid`` started it; returns its pid (0 when there was none).

    Blender may unregister its add-ons while quitting, before ``atexit`` hooks run, so the quit hook
    cannot rely on the worker (it may be gone): it goes by the record instead.
    """
    backend = LocalBackend(LocalConfig(python="", workspace=Path("."), state_dir=Path(state_dir)))
    record = backend.read_record()
    if record is None or record.owner_pid != owner_pid or not is_backend_process(record.pid):
        return 0
    backend.stop(record.pid, timeout_s=timeout_s)
    return record.pid


# -- processes ------------------------------------------------------------------------------------------


def is_backend_process(pid: int) -> bool:
    """Whether ``pid`` is alive and (where the OS tells us) runs ``dyntet ... serve``."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: not ours to reuse or stop
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            parts = cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
        text = b" ".join(parts)
        state = _proc_state(pid)
        return state != "Z" and b"serve" in parts and b"dyntet" in text
    return True  # macOS: no /proc; the pid is alive and was recorded by us


def _proc_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else ""


def _terminate(pid: int) -> None:
    try:
        if sys.platform == "win32":
            os.kill(pid, signal.CTRL_BREAK_EVENT)
        else:
            os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL if sys.platform != "win32" else signal.SIGTERM)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _windows_alive(pid: int) -> bool:
    import ctypes

    process_query_limited_information = 0x1000
    still_active = 259
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return False
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)
