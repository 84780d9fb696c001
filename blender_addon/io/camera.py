"""The tracked camera of a sequence (manifest ``camera``) as Blender camera settings. Numpy only.

Why here: the focal length, sensor fit, lens shift and pixel aspect are the arithmetic that makes the
Blender camera see the footage's framing, so it is plain numpy and unit-tested without ``bpy``.

Pinhole model of the manifest (``docs/architecture.md``): a point ``(X, Y, Z)`` in camera axes (OpenGL:
looking down −Z, +Y up) lands at pixel ``u = cx + fx · X / −Z``, ``v = cy − fy · Y / −Z`` of a square
``size × size`` crop, origin at the top-left corner. Blender's camera uses the same axes, so its object
matrix is the scene's ``camera_to_scene`` carried into Z-up by :data:`~.convert.Y_UP_TO_Z_UP` (no
conjugation: the camera's own axes are already Blender's).

Blender with ``sensor_fit = "HORIZONTAL"`` maps the sensor width to the image width: ``lens / sensor_width
= fx / width``. Non-square pixels (``fx ≠ fy``) become ``pixel_aspect_x / pixel_aspect_y = fy / fx``
(Blender's vertical focal in pixels is ``fx · aspect_x / aspect_y``). An off-centre principal point is a
lens shift in units of the image width (horizontal fit), measured in x pixels, whose vertical pixels are
``aspect_y / aspect_x`` of them: ``shift_x = (width / 2 − cx) / width``,
``shift_y = (cy − height / 2) / width · aspect_y / aspect_x`` (``BKE_camera_params_compute_viewplane``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dyntet_formats.camera import read_camera

from .convert import Y_UP_TO_Z_UP

SENSOR_WIDTH_MM = 36.0
"""Blender's default full-frame sensor width; any width works, the ratio to the lens is what counts."""


@dataclass(frozen=True)
class CameraSettings:
    """What a Blender camera object and the scene's render settings need to see as the tracked camera."""

    lens_mm: float
    sensor_width_mm: float
    sensor_fit: str
    shift_x: float
    shift_y: float
    resolution: tuple[int, int]
    pixel_aspect: tuple[float, float]
    matrix_world: np.ndarray
    """float64 [4, 4]: camera-to-world in Blender axes (Z up)."""


def camera_settings(camera: dict[str, Any], sensor_width_mm: float = SENSOR_WIDTH_MM) -> CameraSettings:
    """Blender settings of a manifest camera ``{"intrinsics": [fx, fy, cx, cy], "size", "camera_to_scene"}``.

    >>> s = camera_settings({"intrinsics": [512, 512, 128, 128], "size": 256, "camera_to_scene": np.eye(4).tolist()})
    >>> round(s.lens_mm, 6), s.resolution, (s.shift_x, s.shift_y)
    (72.0, (256, 256), (0.0, 0.0))

    Raises:
        FormatError: the camera is malformed (the message says which part).
    """
    cam = read_camera(camera)
    fx, fy, cx, cy, size = cam.fx, cam.fy, cam.cx, cam.cy, cam.size
    width = height = size
    # Blender's vertical focal is fx · aspect_x / aspect_y; both factors stay >= 1 as in its presets.
    aspect = (1.0, fx / fy) if fx >= fy else (fy / fx, 1.0)
    axes = np.eye(4)
    axes[:3, :3] = Y_UP_TO_Z_UP
    return CameraSettings(
        lens_mm=fx / width * sensor_width_mm,
        sensor_width_mm=sensor_width_mm,
        sensor_fit="HORIZONTAL",
        shift_x=(width / 2.0 - cx) / width,
        shift_y=(cy - height / 2.0) / width * aspect[1] / aspect[0],
        resolution=(width, height),
        pixel_aspect=aspect,
        matrix_world=axes @ cam.camera_to_scene,
    )


def project(settings: CameraSettings, points_world: np.ndarray) -> np.ndarray:
    """Pixels float64 [N, 2] (origin top-left) where a Blender camera with ``settings`` sees world points [N, 3].

    The inverse of the settings' arithmetic, used to check a camera against the intrinsics it came from.
    """
    width, height = settings.resolution
    ax, ay = settings.pixel_aspect
    local = (np.linalg.inv(settings.matrix_world) @ np.c_[points_world, np.ones(len(points_world))].T).T[:, :3]
    depth = -local[:, 2]
    fx = settings.lens_mm / settings.sensor_width_mm * width
    fy = fx * ax / ay
    u = width / 2.0 - settings.shift_x * width + fx * local[:, 0] / depth
    v = height / 2.0 + settings.shift_y * width * ax / ay - fy * local[:, 1] / depth
    return np.stack([u, v], axis=1)
