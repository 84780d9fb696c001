"""Shape keys in bulk: one per frame (one-hot animated) or K blend shapes with weight curves.

Why this shape: Blender's MDD/PC2 importers set every vertex in Python and insert keyframes one by one,
which takes minutes for a thousand frames. Here each key is one ``foreach_set`` of ``[V·3]`` floats and
each F-curve one ``keyframe_points.add`` + ``foreach_set``.
"""

from __future__ import annotations

from typing import Callable, Iterable

import bpy
import numpy as np

from ..io.convert import curve_coords, one_hot_keyframes
from .animation import Channels, set_keyframes

BASIS_NAME = "Basis"


def frame_key_name(index: int) -> str:
    """Name of the shape key of sequence frame ``index``: ``frame_0000``, sortable and stable."""
    return f"frame_{index:04d}"


def add_shape_keys(
    obj: bpy.types.Object,
    shapes: Iterable[np.ndarray],
    names: list[str],
    *,
    on_key: Callable[[int], None] | None = None,
) -> list[bpy.types.ShapeKey]:
    """Add a Basis (the mesh's current vertices) and one shape key per array of ``shapes``.

    Args:
        obj: a mesh object without shape keys.
        shapes: float32 [V, 3] arrays in Blender axes, one per name (consumed lazily, so a memory-mapped
            sequence is converted one frame at a time).
        names: key names, unique.
        on_key: called with the index after each key (progress).

    Returns:
        The new keys in order. Each key's ``value`` is set to 0 explicitly: keys start inactive and only
        the animation turns them on.
    """
    if obj.data.shape_keys is not None:
        raise ValueError(f"{obj.name!r} already has shape keys; import into a new object")
    obj.shape_key_add(name=BASIS_NAME, from_mix=False)
    keys = []
    for index, (name, shape) in enumerate(zip(names, shapes, strict=True)):
        key = obj.shape_key_add(name=name, from_mix=False)
        # ``points`` (4.1+) is the typed point collection: foreach_set on it is a memcpy, while the
        # generic ``data`` collection goes through RNA per element (≈30× slower at 30k vertices).
        points = key.points if hasattr(key, "points") else key.data
        points.foreach_set("co", np.ascontiguousarray(shape, dtype=np.float32).ravel())
        key.value = 0.0
        keys.append(key)
        if on_key is not None:
            on_key(index)
    obj.data.shape_keys.use_relative = True
    return keys


def animate_one_hot(channels: Channels, names: list[str], frame_start: int) -> None:
    """Animate per-frame keys so that key ``i`` alone has value 1 on frame ``frame_start + i``.

    Args:
        channels: the F-curve home of the mesh's ``shape_keys`` (see ``Performance.channels_for``).
        names: the per-frame key names, in frame order.
        frame_start: Blender frame of the first key.

    CONSTANT interpolation: between frames the shape does not blend, it switches, exactly as the
    sequence was sampled.
    """
    for index, name in enumerate(names):
        curve = channels.new_curve(f'key_blocks["{name}"].value', group="Frames")
        set_keyframes(curve, one_hot_keyframes(index, len(names), frame_start), "CONSTANT")


def animate_weights(
    channels: Channels, key_data: bpy.types.Key, names: list[str], weights: np.ndarray, frame_start: int
) -> None:
    """Animate K blend-shape keys with per-frame weights (LINEAR between frames).

    Args:
        channels: the F-curve home of ``key_data``.
        key_data: the mesh's ``shape_keys``.
        names: K key names.
        weights: float32 [T, K] weight of each key per frame, within [-1, 1] (see
            :func:`dyntet_formats.sequence.normalise_rig`): Blender clamps key values to the sliders' range.
        frame_start: Blender frame of weights row 0.
    """
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 2 or weights.shape[1] != len(names):
        raise ValueError(f"weights must be [T, {len(names)}], got {list(weights.shape)}")
    if weights.size and float(np.abs(weights).max()) > 1.0 + 1e-6:
        raise ValueError("blend-shape weights must lie in [-1, 1]; normalise the rig first")
    frames = frame_start + np.arange(weights.shape[0], dtype=np.float32)
    for k, name in enumerate(names):
        key_data.key_blocks[name].slider_min = -1.0
        curve = channels.new_curve(f'key_blocks["{name}"].value', group="Blend shapes")
        set_keyframes(curve, curve_coords(frames, weights[:, k]), "LINEAR")
