"""A named-control rig on an imported head: Basis + one key per control with F-curves, and an optional
exact corrective layer (one key per frame holding ``vertices − key mix``, one-hot animated).

With the correctives on, every frame shows the true DynTet mesh; an artist edits the control curves
(or mutes the correctives' group to see the pure rig) and sends the result back with Bake exact.
"""

from __future__ import annotations

from typing import Callable

import bpy
import numpy as np

from ..io.controls import ControlRig
from ..io.convert import curve_coords, points_to_blender
from .animation import Channels, curves_of, set_keyframes
from .shape_keys import add_shape_keys, animate_one_hot

CONTROLS_GROUP = "Controls"


def corrective_key_name(index: int) -> str:
    return f"fix_{index:04d}"


def add_control_keys(obj: bpy.types.Object, rig: ControlRig, vertices: np.ndarray | None, first_frame: int,
                     on_key: Callable[[int], None] | None = None) -> list[str]:
    """Add the controls' keys (and correctives when ``vertices`` [T, V, 3] is given); returns all key names.

    The mesh's vertices must already be ``rig.basis`` in Blender axes.
    """
    names = list(rig.names)
    shapes = [points_to_blender(k) for k in rig.keys]
    if vertices is not None:
        basis = points_to_blender(rig.basis)
        mix = rig.mix(rig.weights)
        for t in range(len(vertices)):
            shapes.append(basis + points_to_blender(np.asarray(vertices[t], np.float32) - mix[t]))
            names.append(corrective_key_name(first_frame + t))
    add_shape_keys(obj, iter(shapes), names, on_key=on_key)
    for name in rig.names:
        obj.data.shape_keys.key_blocks[name].slider_max = rig.slider_max
    return names


def animate_controls(channels: Channels, rig: ControlRig, frame_start: int, corrective: list[str]) -> None:
    """F-curves: LINEAR control curves (editable) and CONSTANT one-hot corrective curves."""
    frames = frame_start + np.arange(len(rig.weights), dtype=np.float32)
    for k, name in enumerate(rig.names):
        curve = channels.new_curve(f'key_blocks["{name}"].value', group=CONTROLS_GROUP)
        set_keyframes(curve, curve_coords(frames, rig.weights[:, k]), "LINEAR")
    if corrective:
        animate_one_hot(channels, corrective, frame_start)  # in the "Frames" group


def control_curves(obj: bpy.types.Object, names: list[str], frame_start: int, count: int) -> np.ndarray:
    """Evaluate the controls' values float32 [count, C] on frames ``frame_start …`` (for Bake exact / CSV)."""
    curves = {c.data_path: c for c in curves_of(obj.data.shape_keys)}
    out = np.zeros((count, len(names)), np.float32)
    for k, name in enumerate(names):
        curve = curves.get(f'key_blocks["{name}"].value')
        if curve is None:
            out[:, k] = obj.data.shape_keys.key_blocks[name].value
        else:
            out[:, k] = [curve.evaluate(frame_start + t) for t in range(count)]
    return out
