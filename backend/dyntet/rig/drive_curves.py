"""A driving clip from control curves (``dyntet generate --drive curves.csv``, or the add-on's Bake exact).

The curves give α through the run's control map; head motion is the avatar's own tracked motion, from
its start, back and forth, at the curves' frame rate (curves carry no head pose); there is no audio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dyntet.formats.dataset import Dataset
from dyntet.generate import pose as pose_ops
from dyntet.rig.curves import Curves, read_curves
from dyntet.rig.fit import CONTROLS_FILE, ControlMap


def curves_expression(run: Path, curves: Curves) -> np.ndarray:
    """α float32 [T, K] of named curves through ``RUN/controls.npz`` (unknown names warned about)."""
    control_map = ControlMap.load(Path(run) / CONTROLS_FILE)
    return control_map.expression(curves.select(control_map.names))


def own_motion(target: Dataset, count: int, fps: float, cutoff_hz: float) -> np.ndarray:
    """The avatar's smoothed head poses [count, 4, 4] at ``fps``, looped back and forth."""
    clip = pose_ops.smooth(target.tracking.pose, target.fps, cutoff_hz, target.tracking.frame_index)
    steps = np.round(np.arange(count) * target.fps / fps).astype(np.int64)
    return clip[pose_ops.ping_pong(int(steps.max()) + 1, len(clip))[steps]]


def load_curves(path: Path, target: Dataset) -> Curves:
    """Curves of a CSV resampled onto the avatar's frame rate."""
    return read_curves(path, target.fps)
