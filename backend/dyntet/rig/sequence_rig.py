"""The named-control rig of a generated sequence: ``SEQ/controls.npz`` (read by the Blender add-on).

Holds ``names`` [C], ``basis`` float32 [V, 3], ``keys`` float32 [C, V, 3] (head space, metres: the run's
fitted keys, :func:`dyntet.rig.meshes.fitted_keys`) and ``weights`` float32 [T, C], the controls of each
generated frame. The weights are the bounded least-squares controls of each frame's α under the run's
map (within the sliders' 0..1.5, :func:`project`), so every drive source — the own clip, another
person, a curves CSV — gets named curves the same way; the add-on's corrective layer (``vertices`` −
key mix) keeps the default look exact.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from dyntet.formats.atomic import write_bytes_atomic
from dyntet.rig.controls import ControlsError
from dyntet.rig.fit import CONTROLS_FILE, ControlMap, clip_points
from dyntet.rig.meshes import ControlKeys, clip_vertices, fitted_keys

KEYS_FILE = "control_keys.npz"
SEQUENCE_FILE = "controls.npz"
SLIDER_MAX = 1.5


def project(control_map: ControlMap, expression: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """Controls float32 [T, C] in 0..SLIDER_MAX whose α is closest to ``expression`` [T, K].

    There are more controls than α has dimensions, so plain least squares has no unique answer and its
    minimum-norm one goes negative on one side of every pair (smile against frown); a bounded fit with a
    small pull towards 0 picks the few controls a frame needs, as an animator would.
    """
    from scipy.optimize import lsq_linear

    weights = control_map.weights.astype(np.float64)  # [C, K]
    penalty = np.sqrt(ridge * np.mean(np.sum(weights ** 2, 1)))
    system = np.concatenate([weights.T, penalty * np.eye(len(weights))])
    targets = np.asarray(expression, np.float64) - control_map.bias
    pad = np.zeros(len(weights))
    solved = [lsq_linear(system, np.concatenate([target, pad]), bounds=(0.0, SLIDER_MAX)).x for target in targets]
    return np.asarray(solved, np.float32).reshape(len(targets), len(weights))


def build_run_keys(loaded, control_map: ControlMap) -> ControlKeys:
    """Fit the run's keys to its training clip's true meshes and save ``RUN/control_keys.npz``."""
    from dyntet.generate.geometry import FrozenGeometry

    tracking = loaded.dataset.tracking
    frames = loaded.dataset.split("train")
    controls = control_map.controls(clip_points(loaded.dataset, frames))
    geometry = FrozenGeometry.from_model(loaded.model)
    meshes = clip_vertices(geometry, tracking.expression[frames.start:frames.stop],
                           loaded.config.model.geometry.expression_window)
    keys = fitted_keys(control_map.names, controls, meshes)
    _save(Path(loaded.run) / KEYS_FILE, names=np.array(keys.names), basis=keys.basis, keys=keys.keys)
    return keys


def write_sequence_rig(sequence: Path, run: Path, expression: np.ndarray) -> bool:
    """Write ``SEQ/controls.npz`` when the run has controls (``dyntet rig``); False when it has none."""
    run = Path(run)
    if not (run / CONTROLS_FILE).exists() or not (run / KEYS_FILE).exists():
        return False
    control_map = ControlMap.load(run / CONTROLS_FILE)
    with np.load(run / KEYS_FILE) as data:
        names, basis, keys = tuple(str(n) for n in data["names"]), data["basis"], data["keys"]
    if names != control_map.names:
        raise ControlsError(f"{run / KEYS_FILE} does not match {run / CONTROLS_FILE}: re-run `dyntet rig {run}`")
    _save(Path(sequence) / SEQUENCE_FILE, names=np.array(control_map.names), basis=basis, keys=keys,
          weights=project(control_map, expression),
          meta=np.array(json.dumps({"slider_max": SLIDER_MAX, "run": str(run.resolve())})))
    return True


def _save(path: Path, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())
