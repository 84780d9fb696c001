"""The viewing camera of a sequence (manifest ``camera``): the one reader, for the add-on and the exporters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dyntet_formats.errors import FormatError


@dataclass(frozen=True)
class SequenceCamera:
    """A pinhole camera of the square crop (pixels, origin top-left) placed in the scene (head space)."""

    fx: float
    fy: float
    cx: float
    cy: float
    size: int
    """Side of the square image in pixels."""
    camera_to_scene: np.ndarray
    """float64 [4, 4]: camera (OpenGL axes: looking down −Z, +Y up) to scene (head space, +Y up)."""


def read_camera(camera: Any) -> SequenceCamera:
    """Check a manifest ``camera`` object ``{"intrinsics": [fx, fy, cx, cy], "size", "camera_to_scene"}``.

    Raises:
        FormatError: a part is missing, not finite, or a focal length or the size is not positive.
    """
    try:
        fx, fy, cx, cy = (float(x) for x in camera["intrinsics"])
        size = int(camera["size"])
        matrix = np.asarray(camera["camera_to_scene"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"manifest.json camera needs intrinsics [fx, fy, cx, cy], size and a 4x4 "
                          f"camera_to_scene ({exc!r})") from None
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise FormatError(f"manifest.json camera_to_scene must be a finite 4x4 matrix, got shape {matrix.shape}")
    if not (fx > 0 and fy > 0 and size > 0 and np.isfinite([cx, cy]).all()):
        raise FormatError(f"manifest.json camera has fx {fx}, fy {fy}, size {size}: focal lengths and size "
                          "must be positive")
    return SequenceCamera(fx, fy, cx, cy, size, matrix)
