"""Head pose as the object's transform animation (location, quaternion rotation, scale)."""

from __future__ import annotations

import bpy
import numpy as np

from ..io.convert import curve_coords, decompose_poses, poses_to_blender
from .animation import Channels, set_keyframes


def animate_head_pose(channels: Channels, obj: bpy.types.Object, poses: np.ndarray, frame_start: int) -> None:
    """Key the object's transform on every frame from head-space poses.

    Args:
        channels: the F-curve home of ``obj``.
        obj: the imported head object (its mesh already in Blender axes).
        poses: float32 [T, 4, 4] head-to-scene transforms, head space (+Y up).
        frame_start: Blender frame of pose 0.

    Quaternion rotation mode avoids Euler flips; LINEAR interpolation gives smooth motion blur between
    the sampled frames while every whole frame is exact.
    """
    location, rotation, scale = decompose_poses(poses_to_blender(poses))
    frames = frame_start + np.arange(location.shape[0], dtype=np.float32)
    obj.rotation_mode = "QUATERNION"
    obj.location, obj.rotation_quaternion, obj.scale = location[0], rotation[0], scale[0]
    for path, values in (("location", location), ("rotation_quaternion", rotation), ("scale", scale)):
        for axis in range(values.shape[1]):
            curve = channels.new_curve(path, index=axis, group="Object Transforms")
            set_keyframes(curve, curve_coords(frames, values[:, axis]), "LINEAR")
