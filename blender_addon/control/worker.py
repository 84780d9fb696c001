"""The network worker: one thread that owns the protocol client and the event listener. No ``bpy``.

Why a thread: every request may wait for the network, and Blender's UI must never wait (no operator
may block for more than 100 ms). ZeroMQ sockets belong to one thread, so this thread creates the
:class:`~dyntet_protocol.Client` and :class:`~dyntet_protocol.EventListener` and is the only one to use
them. The main thread talks to it through two queues::

    operators ──Command──▶ worker.commands ──▶ [worker thread: client, listener, local process]
    panels ◀── BackendState.apply ◀── timer drains ◀── updates ◀──Update──┘

Events are notifications (PUB/SUB may drop them); the worker polls ``job.status`` for the jobs it
follows now and then, so a lost ``done`` event only delays the panel, never wedges it.
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from . import state as st
from .commands import (
    BackendSettings, BakeExact, Cancel, Command, Connect, Disconnect, FetchSequence, Quit, Refresh, Resume, StopLocal,
    Submit, run_in_workspace,
)
from .local import BackendSetupError, LocalBackend, LocalConfig
from .records import error_code, names, update_from_event, update_from_progress, update_from_record
from .transfer import bring_sequence, dataset_report, upload_footage

POLL_S = 0.05
"""How long one loop iteration waits for events or commands."""
STATUS_EVERY_S = 2.0
"""How often the jobs we follow are asked for their record (the truth behind the events)."""
RETRY_EVERY_S = 2.0
"""How often a lost connection is retried."""
REQUEST_TIMEOUT_S = 5.0
CLIENT_NAME = "dyntet-blender"
TRANSFER_UPDATE_EVERY_S = 0.1
"""Upload progress reaches the panel at most this often (a chunk is acknowledged every few ms)."""


@dataclass
class _Followed:
    kind: str
    then_import: str = ""
    terminal_seen: bool = False
    bake: BakeExact | None = None
    """A Bake exact whose meshes go back to the main thread when the job is done."""


class Worker:
    """Owns the backend connection on a daemon thread.

    Args:
        updates: where :class:`~.state.Update` messages go (drained by Blender's main thread).
        client_factory: ``(endpoint, keys) -> Client``; default: ``dyntet_protocol.Client``.
        listener_factory: ``(endpoint, keys) -> EventListener``; default: ``dyntet_protocol.EventListener``.
    """

    def __init__(
        self,
        updates: "queue.SimpleQueue[st.Update]",
        *,
        client_factory: Callable[[str, Any], Any] | None = None,
        listener_factory: Callable[[str, Any], Any] | None = None,
    ) -> None:
        self.commands: "queue.SimpleQueue[Command]" = queue.SimpleQueue()
        self.updates = updates
        self._client_factory = client_factory or _default_client
        self._listener_factory = listener_factory or _default_listener
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._listener: Any = None
        self._settings: BackendSettings | None = None
        self._local: LocalBackend | None = None
        self._connected = False
        self._connected_at = 0.0
        self._next_retry = 0.0
        self._next_status = 0.0
        self._server_id = ""
        self._endpoint = ""
        """The request endpoint of the server we talk to (may differ from the settings' when reusing)."""
        self._followed: dict[str, _Followed] = {}
        self._cancel_transfer = threading.Event()
        """Set by the main thread to stop an upload between two chunks (the part sent stays for later)."""

    # -- main-thread API --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="dyntet-worker", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def send(self, command: Command) -> None:
        """Queue a command (never blocks)."""
        self.commands.put(command)

    def cancel_transfer(self) -> None:
        """Stop the running upload soon (never blocks). Commands wait while one runs, so this is a flag."""
        self._cancel_transfer.set()

    def stop(self, *, stop_local: bool = False, timeout_s: float = 8.0) -> None:
        """Ask the thread to finish (and optionally stop the local backend it started); wait ``timeout_s``."""
        if self._thread is None:
            return
        self._cancel_transfer.set()  # an upload would keep the thread from reading Quit
        self.send(Quit(stop_local=stop_local))
        self._thread.join(timeout_s)
        self._thread = None

    # -- thread -----------------------------------------------------------------------------------------

    def _emit(self, update: st.Update) -> None:
        self.updates.put(update)

    def _run(self) -> None:
        try:
            while True:
                command = self._next_command()
                if isinstance(command, Quit):
                    self._quit(command)
                    return
                if command is not None:
                    self._handle(command)
                self._pump_events()
                self._housekeeping()
        except Exception as exc:  # a bug here must reach the panel, not vanish with the thread
            self._emit(st.ConnectionLost(f"the add-on's network worker stopped: {exc!r}", "Reconnect to restart it"))
            self._close()

    def _next_command(self) -> Command | None:
        try:
            return self.commands.get(timeout=0 if self._listener is not None else POLL_S)
        except queue.Empty:
            return None

    def _handle(self, command: Command) -> None:
        try:
            if isinstance(command, Connect):
                self._connect(command)
            elif isinstance(command, Disconnect):
                self._close()
                self._settings = None
                self._emit(st.Disconnected())
            elif isinstance(command, StopLocal):
                self._stop_local(command.settings)
            elif isinstance(command, Submit):
                self._submit(command)
            elif isinstance(command, BakeExact):
                self._bake(command)
            elif isinstance(command, Cancel):
                self._record(self._require_client().cancel(command.job_id))
            elif isinstance(command, Resume):
                record = self._require_client().resume(command.job_id)
                self._followed.setdefault(command.job_id, _Followed(record.get("kind", "")))
                self._followed[command.job_id].terminal_seen = False
                self._subscribe(command.job_id)
                self._record(record)
            elif isinstance(command, FetchSequence):
                self._require_client()
                key = f"fetch-{PurePosixPath(command.relative).name}"
                path = self._bring_here(command.relative, key)
                self._emit(st.SequenceReady(key, str(path), command.relative))
            elif isinstance(command, Refresh):
                self._refresh()
            else:
                raise TypeError(f"unknown command {command!r}")
        except BackendSetupError as exc:
            if isinstance(command, Connect):
                self._emit(st.Disconnected())
            self._emit(st.Problem(str(exc), "Open Edit ▸ Preferences ▸ Add-ons ▸ DynTet"))
        except _NotConnected:
            self._emit(st.Problem("Not connected to a backend", "Press Connect (or Start) first"))
        except _TransferCancelled:
            pass  # reported by _upload
        except Exception as exc:
            self._report(exc)

    # -- connection -------------------------------------------------------------------------------------

    def _connect(self, command: Connect) -> None:
        self._close()
        settings = command.settings
        self._settings = settings
        self._endpoint = ""
        endpoint = settings.request_endpoint
        self._emit(st.Connecting(endpoint))
        keys = _load_keys(settings)
        if settings.mode == "LOCAL":
            self._local = self._local or LocalBackend(_local_config(settings))
            if self._local.config != _local_config(settings):
                self._local = LocalBackend(_local_config(settings))
            record = self._local.existing()
            if record is not None and self._try_hello(endpoint, keys, timeout_s=2.0):
                self._emit(st.JobLog("", f"reusing the backend already running (pid {record.pid})"))
                self._emit(st.LocalProcess(record.pid, record.log_path))
            else:
                if record is not None:  # alive but silent: a hung or foreign-endpoint process
                    self._emit(st.JobLog("", f"replacing the unresponsive backend (pid {record.pid})"))
                    self._local.stop(record.pid)
                elif self._try_hello(endpoint, keys, timeout_s=0.5):
                    self._emit(st.JobLog("", f"connected to a backend already serving {endpoint}"))
                serving = self._local.workspace_server() if self._client is None else None
                if serving is not None and self._try_hello(serving[1], keys, timeout_s=2.0):
                    self._emit(st.JobLog("", f"connected to the backend already serving the workspace "
                                             f"(pid {serving[0]}, {serving[1]})"))
                if self._client is None:
                    if not command.start_local:
                        self._emit(st.ConnectionLost(f"no backend answers at {endpoint}", "Press Start"))
                        return
                    started = self._local.start()
                    self._emit(st.LocalProcess(started.pid, started.log_path))
                    if not self._wait_for_local(endpoint, keys, settings.connect_timeout_s):
                        return
        elif not self._try_hello(endpoint, keys, timeout_s=REQUEST_TIMEOUT_S):
            self._emit(st.ConnectionLost(f"no reply from {endpoint}", st.hint_for("timeout")))
            self._next_retry = time.monotonic() + RETRY_EVERY_S
            return
        self._on_connected()

    def _try_hello(self, endpoint: str, keys: Any, timeout_s: float) -> bool:
        """Open a client and say hello; keep it on success. Protocol mismatches and refused keys raise."""
        client = self._client_factory(endpoint, keys)
        client.timeout_s = timeout_s
        try:
            client.connect()
        except Exception as exc:
            client.close()
            if error_code(exc) in ("timeout", "closed"):
                return False
            raise
        client.timeout_s = REQUEST_TIMEOUT_S
        self._client = client
        return True

    def _wait_for_local(self, endpoint: str, keys: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self._local.exit_code()
            if code is not None:
                tail = self._local.log_tail()
                self._emit(st.LocalProcess(0, str(self._local.log_path), code))
                self._emit(st.ConnectionLost(
                    f"the backend exited with code {code}" + (f": {tail.splitlines()[-1]}" if tail else ""),
                    _exit_hint(tail, self._settings),
                ))
                self._local.forget()
                return False
            if self._try_hello(endpoint, keys, timeout_s=0.5):
                return True
            if not self.commands.empty():  # the user changed their mind (Disconnect / Quit) while we wait
                return False
        self._emit(st.ConnectionLost(
            f"the backend did not answer within {timeout_s:.0f} s", f"See its log: {self._local.log_path}"
        ))
        return False

    def _on_connected(self) -> None:
        server = self._client.server
        capabilities = dict(server.capabilities or {})
        backends = capabilities.get("backends") or {}
        if isinstance(backends, dict):
            backend_names = tuple(f"{key}: {value}" for key, value in sorted(backends.items()))
        else:
            backend_names = tuple(str(b) for b in backends)
        restarted = bool(self._server_id) and server.server_id != self._server_id
        self._server_id = server.server_id
        self._endpoint = self._client.endpoint
        self._listener = self._listener_factory(server.events_endpoint, _load_keys(self._settings))
        self._listener.on(self._on_event)
        for job_id in self._followed:
            self._subscribe(job_id)
        self._listener.poll(0)  # creates the socket and applies the subscriptions now
        self._connected = True
        self._connected_at = time.monotonic()
        workspace = self._settings.workspace if self._settings.mode == "LOCAL" else ""
        self._emit(st.Connected(
            address=self._client.endpoint,
            server_version=str(server.server_version),
            protocol=int(server.protocol),
            device=str(capabilities.get("device") or "unknown"),
            backends=backend_names,
            job_kinds=tuple(sorted(name for name, kind in (server.job_kinds or {}).items()
                                   if not isinstance(kind, dict) or kind.get("available", True))),
            workspace=workspace,
        ))
        if restarted:
            self._emit(st.JobLog("", "the backend restarted; job states were reloaded"))
        self._refresh()
        self._poll_followed(force=True)

    def _lost(self, reason: str) -> None:
        self._close()
        self._emit(st.ConnectionLost(reason, "Reconnecting… or press Start to restart the local backend"))
        self._next_retry = time.monotonic() + RETRY_EVERY_S

    def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._client is not None:
            self._client.close()
            self._client = None
        self._connected = False

    def _require_client(self) -> Any:
        if self._client is None or not self._connected:
            raise _NotConnected()
        return self._client

    def _stop_local(self, given: BackendSettings | None) -> None:
        settings = self._settings or given
        local = self._local or (LocalBackend(_local_config(settings)) if settings is not None else None)
        record = local.read_record() if local is not None else None
        if local is None or (record is None and not local.started_here):
            self._emit(st.Problem("No local backend to stop", "Only a backend started from Blender can be stopped here"))
            return
        if self._client is not None and self._settings is not None and self._settings.mode == "LOCAL":
            try:
                self._client.shutdown()
            except Exception:
                pass  # it may already be gone; the process is stopped below either way
        self._close()
        local.stop(record.pid if record else None)
        self._settings = None
        self._emit(st.LocalProcess(0, str(local.log_path)))
        self._emit(st.Disconnected())

    def _quit(self, command: Quit) -> None:
        if command.stop_local and self._local is not None and self._local.started_here:
            try:
                if self._client is not None:
                    self._client.timeout_s = 1.0
                    self._client.shutdown()
            except Exception:
                pass
            self._close()
            self._local.stop(timeout_s=3.0)
        self._close()

    # -- jobs -------------------------------------------------------------------------------------------

    def _submit(self, command: Submit) -> None:
        client = self._require_client()
        params = dict(command.params)
        for name, source in command.stage_files.items():
            params[name] = self._stage(Path(source), command.kind)
        record = client.submit(command.kind, params)
        job_id = record["id"]
        self._followed[job_id] = _Followed(command.kind, command.then_import)
        self._subscribe(job_id)
        self._record(record)
        self._emit(st.ClearProblem())

    def _bake(self, command: BakeExact) -> None:
        client = self._require_client()
        run = run_in_workspace(command.run, str(client.server.raw.get("workspace", "")))
        record = client.call("bake.exact", run=run, names=list(command.names), controls=command.controls,
                             start=command.start, stop=command.stop, out=command.out)["job"]
        self._followed[record["id"]] = _Followed("bake", bake=command)
        self._subscribe(record["id"])
        self._record(record)
        self._emit(st.ClearProblem())

    def _stage(self, source: Path, kind: str) -> str:
        """A workspace-relative path to ``source``: the file itself when already inside the local workspace,
        else a copy under ``footage/``; for a remote backend, the file uploaded under ``footage/``."""
        settings = self._settings
        if settings is None:
            raise _NotConnected()
        if not source.is_file():
            raise BackendSetupError(f"the file {source} does not exist")
        if settings.mode != "LOCAL":
            return self._upload(source, kind)
        workspace = Path(settings.workspace).resolve()
        resolved = source.resolve()
        if workspace in resolved.parents:
            return resolved.relative_to(workspace).as_posix()
        target = workspace / "footage" / source.name
        if not (target.is_file() and target.stat().st_size == source.stat().st_size):
            target.parent.mkdir(parents=True, exist_ok=True)
            self._emit(st.JobLog("", f"copying {source.name} into the workspace"))
            shutil.copyfile(source, target)
        return target.relative_to(workspace).as_posix()

    def _upload(self, source: Path, kind: str) -> str:
        """Upload ``source`` for a job of ``kind`` with progress in the panel; returns its workspace path.

        Runs on this thread like every request (the UI never waits); events wait meanwhile and the jobs'
        records are polled afterwards. Cancelling keeps what was sent, so the next try continues from there.
        """
        client = self._require_client()
        self._cancel_transfer.clear()
        name = source.name
        last: list[Any] = [0.0, ""]  # when, and which stage, the panel last heard of

        def report(stage: str, done: int, total: int, force: bool = False) -> None:
            if self._cancel_transfer.is_set() and stage in ("hashing", "uploading"):
                raise _TransferCancelled()
            now = time.monotonic()
            if force or stage != last[1] or now - last[0] >= TRANSFER_UPDATE_EVERY_S:
                last[:] = [now, stage]
                self._emit(st.Transfer(kind, name, stage, done, total))

        size = source.stat().st_size
        report("hashing", 0, size, force=True)
        try:
            result = upload_footage(client, source, report)
        except _TransferCancelled:
            self._emit(st.Transfer(kind, name, "cancelled", 0, size))
            self._emit(st.JobLog("", f"upload of {name} cancelled; the part already sent is kept on the backend "
                                     "and the next try continues from it"))
            raise
        except Exception:
            self._emit(st.Transfer(kind, name, "failed", 0, size))
            raise
        self._emit(st.Transfer(kind, name, "done", size, size))
        path = str(result["path"])
        if result.get("existing"):
            self._emit(st.JobLog("", f"{name} is already on the backend as {path}"))
        else:
            self._emit(st.JobLog("", f"uploaded {name} to {path} ({int(result.get('sent', 0)) / 2**20:.1f} MiB sent)"))
        return path

    def _subscribe(self, job_id: str) -> None:
        if self._listener is not None:
            self._listener.subscribe_job(job_id)

    def _record(self, record: dict[str, Any]) -> None:
        """Publish a job record; start the follow-up when it has just finished."""
        update = update_from_record(record)
        self._emit(update)
        followed = self._followed.get(update.job_id)
        if followed is not None and update.state in st.TERMINAL and not followed.terminal_seen:
            followed.terminal_seen = True
            if update.state == "done":
                self._finished(update.job_id, followed, record)

    def _finished(self, job_id: str, followed: _Followed, record: dict[str, Any]) -> None:
        if followed.kind == "preprocess":
            self._show_contact_sheet(job_id, record)
        if followed.then_import:
            path = self._bring_here(followed.then_import, job_id)
            self._emit(st.SequenceReady(job_id, str(path), followed.then_import))
        if followed.bake is not None:
            bake = followed.bake
            meshes = self._require_client().fetch_frames(bake.out)
            self._emit(st.BakeReady(job_id, bake.object_name, bake.frame_first,
                                    bake.controls[bake.start:bake.stop], meshes))
        self._refresh()

    def _bring_here(self, relative: str, job_id: str) -> Path:
        if self._settings is None or self._settings.mode != "LOCAL":
            self._emit(st.JobLog(job_id, f"downloading {relative}"))
        return bring_sequence(self._client if self._connected else None, self._settings, relative, job_id)

    def _show_contact_sheet(self, job_id: str, record: dict[str, Any]) -> None:
        out = (record.get("params") or {}).get("out")
        if not out or self._settings is None:
            return
        try:
            sheet, report = dataset_report(self._client if self._connected else None, self._settings, out, job_id)
        except Exception as exc:  # the dataset is usable without its pictures
            self._emit(st.JobLog(job_id, f"no tracking report: {exc}"))
            return
        result = {**(record.get("result") or {}), "report": report}
        self._emit(st.JobUpdate(job_id, preview_path=str(sheet) if sheet.is_file() else None, result=result))

    def _refresh(self) -> None:
        client = self._require_client()
        self._emit(st.Listing(
            datasets=tuple(names(client.list_datasets())),
            runs=tuple(names(client.list_runs())),
            sequences=tuple(names(client.list_sequences())),
        ))

    # -- events and housekeeping ------------------------------------------------------------------------

    def _pump_events(self) -> None:
        if self._listener is None:
            return
        try:
            self._listener.poll(POLL_S)
        except Exception as exc:
            self._lost(f"event stream failed: {exc}")

    def _on_event(self, event: Any) -> None:
        """Listener callback (this thread): translate a protocol event into panel updates."""
        if event.type == "heartbeat" or not event.job:
            return
        job_id = event.job
        data = event.data or {}
        if event.type == "log":
            self._emit(st.JobLog(job_id, str(data.get("line") or data.get("message") or "")))
        elif event.type == "preview":
            path = self._save_preview(job_id, event)
            if path is not None:
                self._emit(st.JobUpdate(job_id, preview_path=str(path)))
        elif event.type == "progress":
            self._emit(update_from_progress(job_id, data))
        elif event.type == "state" and "id" in data and "state" in data:
            self._record(data)  # a state event carries the whole job record
        elif event.type in ("state", "done", "failed"):
            # The record is the truth (result paths, error details): fetch it rather than trust the event.
            try:
                self._record(self._require_client().job(job_id))
            except Exception:
                self._emit(update_from_event(job_id, event.type, data))

    def _save_preview(self, job_id: str, event: Any) -> Path | None:
        """The preview image of a ``preview`` event as a file here: its bytes saved under the user folder,
        or (too big to travel with the event) the workspace file itself when the backend is local."""
        if self._settings is None:
            return None
        data = event.data or {}
        if not event.buffers:
            relative = data.get("path")
            if self._settings.mode == "LOCAL" and isinstance(relative, str):
                local = Path(self._settings.workspace) / PurePosixPath(relative)
                return local if local.is_file() else None
            return None
        suffix = str(data.get("format") or "png").lower()
        suffix = suffix if suffix in ("png", "jpg", "jpeg") else "png"
        folder = Path(self._settings.state_dir) / "previews"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{job_id}.{suffix}"
        tmp = path.with_suffix(".part")
        tmp.write_bytes(bytes(event.buffers[0]))
        tmp.replace(path)
        return path

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._local is not None and self._local.exit_code() is not None:
            code = self._local.exit_code()
            self._local.stop()  # reaps it and forgets the record
            self._emit(st.LocalProcess(0, str(self._local.log_path), code))
            if self._connected:
                self._lost(f"the local backend exited with code {code}")
                return
        if self._connected:
            grace = now - self._connected_at > 5.0
            if grace and self._listener is not None and not self._listener.server_alive:
                try:
                    self._client.timeout_s = 1.0
                    self._client.ping()
                    self._client.timeout_s = REQUEST_TIMEOUT_S
                    self._connected_at = now  # events may be lost but requests work: keep going
                except Exception as exc:
                    self._lost(f"the backend stopped answering ({error_code(exc) or exc})")
                    return
            self._poll_followed()
        elif self._settings is not None and now >= self._next_retry and self._next_retry > 0:
            self._next_retry = now + RETRY_EVERY_S
            try:
                endpoint = self._endpoint or self._settings.request_endpoint
                if self._try_hello(endpoint, _load_keys(self._settings), timeout_s=1.0):
                    self._on_connected()
            except Exception as exc:
                self._report(exc)

    def _poll_followed(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_status:
            return
        self._next_status = now + STATUS_EVERY_S
        for job_id, followed in list(self._followed.items()):
            if followed.terminal_seen and not force:
                continue
            try:
                self._record(self._client.job(job_id))
            except Exception as exc:
                if error_code(exc) == "not_found":
                    self._followed.pop(job_id, None)
                    self._emit(st.JobUpdate(job_id, state="failed", error_code="not_found",
                                            error_message="the backend no longer knows this job"))
                elif error_code(exc) == "timeout":
                    self._lost("the backend stopped answering")
                    return
                else:
                    raise

    def _report(self, exc: Exception) -> None:
        code = error_code(exc)
        message = getattr(exc, "message", None) or str(exc)
        self._emit(st.Problem(message, st.hint_for(code)))
        if code in ("timeout", "closed"):
            self._lost(message)


def _exit_hint(log_tail: str, settings: BackendSettings | None) -> str:
    text = log_tail.lower()
    if "address already in use" in text or "eaddrinuse" in text:
        port = settings.port if settings else 5555
        return f"Port {port} or {port + 1} is taken: choose another port in the add-on preferences"
    if "no module named" in text:
        return "That Python does not have dyntet installed: set 'Backend Python' in the add-on preferences"
    return "See the backend log for details"


def _local_config(settings: BackendSettings) -> LocalConfig:
    return LocalConfig(
        python=settings.python,
        workspace=Path(settings.workspace),
        request_endpoint=settings.request_endpoint,
        event_endpoint=settings.event_endpoint,
        state_dir=Path(settings.state_dir),
    )


def _load_keys(settings: BackendSettings | None) -> Any:
    if settings is None or settings.mode != "REMOTE":
        return None
    if not settings.server_key_file and not settings.client_key_file:
        return None
    if not (settings.server_key_file and settings.client_key_file):
        raise BackendSetupError("CurveZMQ needs both key files: the server's public key and this client's secret key")
    from dyntet_protocol import ClientKeys

    try:
        return ClientKeys.load(settings.server_key_file, settings.client_key_file)
    except ValueError as exc:
        raise BackendSetupError(str(exc)) from exc


def _default_client(endpoint: str, keys: Any) -> Any:
    from dyntet_protocol import Client

    return Client(endpoint, keys=keys, timeout_s=REQUEST_TIMEOUT_S, name=CLIENT_NAME)


def _default_listener(endpoint: str, keys: Any) -> Any:
    from dyntet_protocol import EventListener

    return EventListener(endpoint, keys=keys)


class _NotConnected(Exception):
    pass


class _TransferCancelled(Exception):
    """The user cancelled an upload (raised from its progress callback, on the worker thread)."""
