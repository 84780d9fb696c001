"""Bake exact: the true DynTet meshes of edited control curves (the add-on's *Bake exact*, ``bake`` jobs).

Control values → α through the run's map (``RUN/controls.npz``) → the generator with each frame's real
expression window, exactly as ``dyntet generate --drive curves.csv`` decodes a take. The rows outside the
baked range are context: a window reads its neighbours, so baking frames 10–20 of a take gives the same
meshes as generating the whole take.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dyntet.progress import Cancelled, Progress, ProgressFn, StopFn
from dyntet.rig.controls import ControlsError
from dyntet.rig.fit import CONTROLS_FILE, ControlMap
from dyntet.rig.meshes import iter_clip_vertices


def order_controls(control_map: ControlMap, names: tuple[str, ...], controls: np.ndarray) -> np.ndarray:
    """Columns of ``controls`` [T, len(names)] rearranged into the map's order; absent controls are 0.

    Raises ControlsError for a name the map does not have (an exact bake must not guess).
    """
    unknown = [n for n in names if n not in control_map.names]
    if unknown:
        raise ControlsError(f"the run has no control(s) {', '.join(unknown)}: its controls are "
                            f"{', '.join(control_map.names)}")
    ordered = np.zeros((len(controls), len(control_map.names)), np.float32)
    for column, name in enumerate(names):
        ordered[:, control_map.names.index(name)] = controls[:, column]
    return ordered


def bake_run(run: Path, names: tuple[str, ...], controls: np.ndarray, rows: slice, *, device: str = "auto",
             batch: int = 16, control_map: ControlMap | None = None, progress: ProgressFn | None = None,
             should_stop: StopFn | None = None) -> np.ndarray:
    """Meshes float32 [rows, V, 3] (head space, metres) of rows ``rows`` of control curves [T, C].

    Args:
        run: the run folder, with ``controls.npz`` (``dyntet rig``).
        names: the control of each column of ``controls``.
        controls: float32 [T, C] values per frame (Blender's evaluated shape-key values).
        rows: the frames to decode; the others only feed the expression windows.
        control_map: the controls → α map; None reads the run's ``controls.npz``.
        progress: ``Progress("bake", frames done, frames)`` per batch.
        should_stop: polled per batch; raises :class:`Cancelled`.
    """
    from dyntet.generate.api import open_run
    from dyntet.generate.geometry import FrozenGeometry

    loaded = open_run(run, device)
    control_map = control_map or ControlMap.load(Path(run) / CONTROLS_FILE)
    alpha = control_map.expression(order_controls(control_map, tuple(names), np.asarray(controls, np.float32)))
    geometry = FrozenGeometry.from_model(loaded.model)
    start, stop, _ = rows.indices(len(alpha))
    out = np.empty((stop - start, geometry.num_vertices, 3), np.float32)
    done = 0
    for vertices in iter_clip_vertices(geometry, alpha, loaded.config.model.geometry.expression_window,
                                       slice(start, stop), batch):
        if should_stop is not None and should_stop():
            raise Cancelled("bake stopped")
        out[done:done + len(vertices)] = vertices
        done += len(vertices)
        if progress is not None:
            progress(Progress("bake", done, len(out), f"{geometry.num_vertices} vertices per frame"))
    return out
