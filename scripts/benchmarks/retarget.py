"""Retarget benchmark: how well the named controls (``dyntet rig``) reproduce a trained avatar's clip.

Needs a trained run on real footage: ``DYNTET_BENCH_RUN=/path/to/run`` (a comma-separated list runs
each; keys are prefixed with the run folder's name when there are several). On the run's training clip:

* ``motion_rms_mm``: RMS over vertices and frames of the true DynTet meshes' displacement from their
  mean mesh (what there is to explain).
* ``control_fit_rms_mm``: RMS of (linear shape-key mix of the clip's measured controls − true mesh): the
  rig an artist sees in Blender with the corrective layer off (:func:`dyntet.rig.meshes.fitted_keys`).
  Floor: ≤ 0.5 × ``motion_rms_mm``.
* ``held_keys_fit_rms_mm``: the same with keys straight from the generator at control = 1
  (:func:`dyntet.rig.meshes.held_keys`), to show why the rig fits its keys instead.
* ``control_fit_exact_rms_mm``: the same for the true DynTet mesh of α(controls) (what Bake exact gives:
  only the controls → α map is lossy).
* ``bake_s_per_100_frames``: wall time of the bake path per 100 frames of the clip: what a ``bake`` job
  (the add-on's Bake exact) does in its process, :func:`dyntet.rig.bake.bake_run` — load the run, cache
  the frozen geometry, controls → α → DynTet meshes.
* ``bake_decode_s_per_100_frames``: the decoding part of it alone (controls → α → meshes).
* ``keys_s``: fitting the basis and one key per control to the clip's meshes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks._timing import each_run
from dyntet.generate.api import open_run
from dyntet.generate.geometry import FrozenGeometry
from dyntet.rig.bake import bake_run
from dyntet.rig.fit import clip_points, fit_controls
from dyntet.rig.meshes import bake_exact, clip_vertices, fitted_keys, held_keys


def _rms_mm(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum(np.asarray(x, np.float64) ** 2, -1)))) * 1e3


def measure(run: Path) -> dict:
    loaded = open_run(run, "cpu")
    tracking = loaded.dataset.tracking
    frames = loaded.dataset.split("train")
    points = clip_points(loaded.dataset, frames)
    alpha = tracking.expression[frames.start:frames.stop]
    window = loaded.config.model.geometry.expression_window
    control_map = fit_controls(points, alpha)
    controls = control_map.controls(points)
    geometry = FrozenGeometry.from_model(loaded.model)
    true = clip_vertices(geometry, alpha, window)
    start = time.perf_counter()
    keys = fitted_keys(control_map.names, controls, true)
    keys_s = time.perf_counter() - start
    held = held_keys(geometry, control_map, window)
    start = time.perf_counter()
    exact = bake_exact(geometry, control_map, controls, window)
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    bake_run(run, control_map.names, controls, slice(0, len(controls)), device="cpu", control_map=control_map)
    bake_s = time.perf_counter() - start
    motion = _rms_mm(true - true.mean(0))
    fit = _rms_mm(keys.mix(controls) - true)
    figures = {
        "frames": int(len(alpha)), "vertices": int(true.shape[1]), "controls": len(control_map.names),
        "motion_rms_mm": round(motion, 4), "control_fit_rms_mm": round(fit, 4),
        "control_fit_exact_rms_mm": round(_rms_mm(exact - true), 4),
        "held_keys_fit_rms_mm": round(_rms_mm(held.mix(controls) - true), 4),
        "fit_to_motion": round(fit / motion, 3),
        "bake_s_per_100_frames": round(100.0 * bake_s / len(alpha), 3),
        "bake_decode_s_per_100_frames": round(100.0 * decode_s / len(alpha), 3), "keys_s": round(keys_s, 3),
        "loadavg": open("/proc/loadavg").read().split()[0],
    }
    print(f"  {run.name}: {figures}", flush=True)
    return figures


def run() -> dict:
    return each_run(measure)
