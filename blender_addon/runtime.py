"""The add-on's live session: backend state, the network worker, and the timer that brings its news in.

Blender data may only be touched on the main thread. The worker puts updates on :data:`UPDATES`;
:func:`drain` — registered with ``bpy.app.timers`` — applies them to :data:`STATE`, imports finished
sequences and redraws the sidebar. (Timers never fire when ``bpy`` runs as a Python module, so tests
call :func:`drain` themselves.)
"""

from __future__ import annotations

import atexit
import os
import queue
import traceback
from pathlib import Path

import bpy
import bpy.utils.previews

from .blender.importer import import_sequence
from .control import state as st
from .control.commands import BackendSettings, Command
from .control.local import stop_owned
from .control.worker import Worker
from .operators.files import make_active

DRAIN_INTERVAL_S = 0.1
"""Timer period while the add-on is enabled (cheap: an empty queue check)."""
MAX_UPDATES_PER_DRAIN = 200
"""Bound the work of one timer call so a flood of events cannot stall the UI."""

STATE = st.BackendState()
UPDATES: "queue.SimpleQueue[st.Update]" = queue.SimpleQueue()

_worker: Worker | None = None
_import_targets: dict[str, str] = {}
"""Sequence folder (workspace-relative) → name of the scene that asked for it."""
_imported: dict[str, str] = {}
"""Job id → name of the object its sequence became (shown in the panel)."""
_stop_on_quit = True
_state_dir = ""
"""The add-on's user folder of the last connection (where the backend record lives)."""
_exit_hook_registered = False
_previews = None


# -- worker ---------------------------------------------------------------------------------------------


def worker() -> Worker:
    """The running worker (started on first use)."""
    global _worker
    if _worker is None or not _worker.alive:
        _worker = Worker(UPDATES)
        _worker.start()
    return _worker


def send(command: Command) -> None:
    """Hand a command to the worker; never blocks."""
    worker().send(command)


def cancel_transfer() -> None:
    """Stop the running upload (never blocks; the worker notices between two chunks)."""
    if _worker is not None and _worker.alive:
        _worker.cancel_transfer()


def remember_settings(settings: BackendSettings) -> None:
    """Keep what quitting needs to know (``atexit`` must not read preferences)."""
    global _stop_on_quit, _state_dir
    _stop_on_quit = settings.stop_on_quit
    _state_dir = settings.state_dir


def request_import(relative: str, scene: bpy.types.Scene, command: Command) -> None:
    """Send ``command`` (a generate job, or a fetch) whose sequence folder ``relative`` is imported into
    ``scene`` once it is on this machine."""
    _import_targets[relative] = scene.name
    send(command)


def imported_object(job_id: str) -> str:
    return _imported.get(job_id, "")


# -- main-thread timer ----------------------------------------------------------------------------------


def drain() -> float:
    """Apply queued updates, import finished sequences, redraw. Returns the next timer interval."""
    changed = False
    for _ in range(MAX_UPDATES_PER_DRAIN):
        try:
            update = UPDATES.get_nowait()
        except queue.Empty:
            break
        STATE.apply(update)
        changed = True
    while STATE.ready:
        _import_ready(STATE.ready.pop(0))
        changed = True
    while STATE.baked:
        _apply_bake(STATE.baked.pop(0))
        changed = True
    if changed:
        _redraw()
    return DRAIN_INTERVAL_S


def _import_ready(ready: st.SequenceReady) -> None:
    wanted = _import_targets.pop(ready.relative, "")
    scene = bpy.data.scenes.get(wanted) or bpy.context.scene
    settings = scene.dyntet.import_settings
    try:
        result = import_sequence(scene, Path(ready.path), settings.to_options())
    except Exception as exc:  # the importer rolled back: report, keep the session alive
        traceback.print_exc()
        STATE.apply(st.Problem(f"Import failed: {exc}", "The sequence is on disk; try File ▸ Import ▸ DynTet Sequence"))
        return
    _imported[ready.job_id] = result.object.name
    STATE.apply(st.JobLog(ready.job_id, f"imported {result.object.name} ({result.num_frames} frames, "
                                        f"{result.seconds:.1f} s)"))
    make_active(bpy.context, result.object)


def _apply_bake(baked: st.BakeReady) -> None:
    """Put a Bake exact's meshes into the head's corrective layer (main thread)."""
    from .blender.control_rig import replace_correctives

    obj = bpy.data.objects.get(baked.object_name)
    if obj is None or obj.type != "MESH" or obj.data.shape_keys is None:
        STATE.apply(st.Problem(f"Bake exact: the head {baked.object_name!r} is gone",
                               "The meshes are in the backend's bakes/ folder; press Bake Exact again"))
        return
    try:
        count = replace_correctives(obj, baked.frame_first, baked.controls, baked.meshes)
    except Exception as exc:  # a bug or an edited head: report, keep the session alive
        traceback.print_exc()
        STATE.apply(st.Problem(f"Bake exact failed: {exc}", "Re-import the head with Named Controls"))
        return
    last = baked.frame_first + count - 1
    STATE.apply(st.JobLog(baked.job_id, f"baked frames {baked.frame_first}–{last} of {obj.name} exactly"))


def _redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


# -- preview images -------------------------------------------------------------------------------------


def preview_icon(path: str) -> int:
    """Icon id of an image file for ``layout.template_icon`` (0 when it cannot be shown)."""
    global _previews
    if not path or not os.path.isfile(path):
        return 0
    try:
        if _previews is None:
            _previews = bpy.utils.previews.new()
        key = f"{path}:{os.path.getmtime(path)}"
        if key not in _previews:
            _previews.load(key, path, "IMAGE")
        return _previews[key].icon_id
    except (RuntimeError, KeyError, OSError):
        return 0


# -- lifetime -------------------------------------------------------------------------------------------


def start() -> None:
    global _exit_hook_registered
    if not bpy.app.timers.is_registered(drain):
        bpy.app.timers.register(drain, first_interval=DRAIN_INTERVAL_S, persistent=True)
    if not _exit_hook_registered:
        atexit.register(_on_exit)
        _exit_hook_registered = True


def stop() -> None:
    """Add-on disabled: stop the timer and the worker. A running local backend stays up (it is found
    and reused on the next connect); it is stopped when Blender quits.

    Blender may unregister its add-ons while quitting, before Python's ``atexit`` hooks run (``bpy`` as a
    module always does), so the quit hook stays registered here and finds the backend through its
    record, not through the worker."""
    global _worker, _previews
    if bpy.app.timers.is_registered(drain):
        bpy.app.timers.unregister(drain)
    if _worker is not None:
        _worker.stop(stop_local=False, timeout_s=3.0)
        _worker = None
    if _previews is not None:
        bpy.utils.previews.remove(_previews)
        _previews = None


def _on_exit() -> None:
    """Blender quits: stop the local backend this Blender started (if the preference says so)."""
    if _worker is not None and _worker.alive:
        _worker.stop(stop_local=_stop_on_quit, timeout_s=6.0)
    if _stop_on_quit and _state_dir:
        stop_owned(Path(_state_dir), os.getpid())


def reset_for_tests() -> None:
    """Forget all session state (module-mode tests reuse one process for many scenarios)."""
    STATE.__dict__.update(st.BackendState().__dict__)
    while not UPDATES.empty():
        UPDATES.get_nowait()
    _import_targets.clear()
    _imported.clear()
