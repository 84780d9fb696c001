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
from ..io.convert import curve_coords, one_hot_keyframes, points_to_blender
from .animation import Channels, channels_of, curves_of, set_keyframes
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


def imported_frames(obj: bpy.types.Object) -> tuple[int, int]:
    """Scene frames ``(first, last)`` of the sequence frames imported into ``obj`` (both included)."""
    if "dyntet_controls" not in obj or "dyntet_frame_start" not in obj:
        raise ValueError(f"{obj.name!r} is not a DynTet head imported with Named Controls")
    first = int(obj["dyntet_frame_start"])
    return first, first + int(obj["dyntet_num_frames"]) - 1


def evaluated_controls(scene: bpy.types.Scene, obj: bpy.types.Object, first: int, count: int) -> np.ndarray:
    """The values float32 [count, C] the controls of ``obj`` take on scene frames ``first …``, as Blender
    evaluates them.

    Read from the F-curves of the shape keys' action when that is all that animates them; with NLA tracks
    (mixed takes) every frame is evaluated by the scene (slower, exact). Clamped to each key's slider
    range, as Blender clamps the value it deforms with.
    """
    names = list(obj["dyntet_controls"])
    key_data = obj.data.shape_keys
    blocks = [key_data.key_blocks[name] for name in names]
    anim = key_data.animation_data
    if anim is not None and any(not track.mute for track in anim.nla_tracks):
        current = scene.frame_current
        out = np.empty((count, len(names)), np.float32)
        for row in range(count):
            scene.frame_set(first + row)
            out[row] = [block.value for block in blocks]
        scene.frame_set(current)
    else:
        out = control_curves(obj, names, first, count)
    low = np.array([b.slider_min for b in blocks], np.float32)
    high = np.array([b.slider_max for b in blocks], np.float32)
    return np.clip(out, low, high)


def _points(block: bpy.types.ShapeKey) -> np.ndarray:
    points = block.points if hasattr(block, "points") else block.data
    co = np.empty(len(points) * 3, np.float32)
    points.foreach_get("co", co)
    return co.reshape(-1, 3)


def replace_correctives(obj: bpy.types.Object, frame_first: int, controls: np.ndarray, meshes: np.ndarray) -> int:
    """Make scene frames ``frame_first …`` show ``meshes`` float32 [N, V, 3] (head space) exactly.

    Each frame's corrective key becomes Basis + (mesh − the mix of the control keys at ``controls[t]``),
    so the shape-key result of that frame is the mesh itself; a frame without a corrective (imported
    without the layer) gets one, switched on by a one-hot CONSTANT curve. Returns the number of keys set.
    """
    names = list(obj["dyntet_controls"])
    key_data = obj.data.shape_keys
    blocks = key_data.key_blocks
    basis = _points(key_data.reference_key)
    deltas = np.stack([_points(blocks[name]) - basis for name in names])                 # [C, V, 3]
    start, _ = imported_frames(obj)
    first_index = int(obj.get("dyntet_first_frame", 0))
    channels = None
    for row, (values, mesh) in enumerate(zip(np.asarray(controls, np.float32), meshes)):
        frame = frame_first + row
        name = corrective_key_name(first_index + frame - start)
        mix = basis + np.tensordot(values, deltas, axes=1)
        shape = basis + points_to_blender(np.asarray(mesh, np.float32)) - mix
        block = blocks.get(name)
        if block is None:
            block = obj.shape_key_add(name=name, from_mix=False)
            block.value = 0.0
            channels = channels or channels_of(key_data)
            if channels is not None:
                curve = channels.new_curve(f'key_blocks["{name}"].value', group="Frames")
                set_keyframes(curve, one_hot_keyframes(1, 3, frame - 1), "CONSTANT")
        points = block.points if hasattr(block, "points") else block.data
        points.foreach_set("co", np.ascontiguousarray(shape, np.float32).ravel())
    obj.data.update()
    return len(meshes)


def set_control_curves(obj: bpy.types.Object, names: list[str], values: np.ndarray, frame_start: int) -> None:
    """Replace the F-curves of the named control keys by ``values`` [T, len(names)] from ``frame_start``."""
    key_data = obj.data.shape_keys
    existing = {c.data_path: c for c in curves_of(key_data)}
    channels = channels_of(key_data)
    if channels is None:
        raise ValueError(f"{obj.name!r} has no animation to put the curves in; import it with Named Controls")
    frames = frame_start + np.arange(len(values), dtype=np.float32)
    for column, name in enumerate(names):
        path = f'key_blocks["{name}"].value'
        curve = existing.get(path)
        if curve is not None:
            channels.fcurves.remove(curve)
        curve = channels.new_curve(path, group=CONTROLS_GROUP)
        set_keyframes(curve, curve_coords(frames, np.asarray(values[:, column], np.float32)), "LINEAR")
