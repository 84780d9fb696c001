"""One square crop around the head for the whole clip, and what it does to the camera.

Why one crop and not one per frame: the dataset has one camera for the clip (``intrinsics [4]``).
Moving the crop would move the principal point every frame, so the crop is fixed — placed from
robust statistics of the tracked face over the clip (its median position and size, plus the range
the face travels), which is the "smoothed" crop at its limit of zero lag and zero shake. It stays
inside the frame: when the wanted side exceeds the frame's short side (footage already cropped to
the head, like most talking-head datasets) the crop is the largest square that fits.

Pixel geometry: a source pixel coordinate ``u`` (origin at the top-left corner, pixel centres at
+0.5) maps to ``(u − x) · size / side`` in the crop; so do the principal point and — scaled by
``size / side`` — the focal length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CropConfig:
    """Where the crop goes."""

    head_scale: float = 2.1
    """Crop side in face sizes (the larger side of the landmarks' box, forehead to chin ≈ 0.18 m):
    2.1 shows the hair, the ears and the top of the shoulders."""
    face_center_y: float = 0.47
    """Height of the face's centre in the crop, as a fraction from the top (room for hair above,
    neck and shoulders below)."""
    motion_percentile: float = 2.0
    """The face's travel is measured between this percentile and its complement (ignores outliers)."""

    def __post_init__(self) -> None:
        if self.head_scale < 1.0:
            raise ValueError(f"head_scale must be ≥ 1 (the crop must hold the face), got {self.head_scale}")
        if not 0.2 <= self.face_center_y <= 0.8:
            raise ValueError(f"face_center_y must be in [0.2, 0.8], got {self.face_center_y}")
        if not 0.0 <= self.motion_percentile < 50.0:
            raise ValueError(f"motion_percentile must be in [0, 50), got {self.motion_percentile}")


@dataclass(frozen=True)
class CropBox:
    """A square ``side × side`` box at ``(x, y)`` (top-left corner) in source pixels, resized to ``size``."""

    x: int
    y: int
    side: int
    size: int

    @property
    def scale(self) -> float:
        """Crop pixels per source pixel."""
        return self.size / self.side

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Source pixel coordinates float [..., 2] → crop pixel coordinates."""
        return (np.asarray(points, np.float64)[..., :2] - (self.x, self.y)) * self.scale

    def intrinsics(self, focal: float, principal: tuple[float, float]) -> np.ndarray:
        """``fx, fy, cx, cy`` in crop pixels (float32 [4]) for a source focal length and principal point."""
        cx, cy = self.to_crop(np.array(principal))
        f = focal * self.scale
        return np.array([f, f, cx, cy], np.float32)

    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` for :func:`dyntet.data.video.read_frames`."""
        return self.x, self.y, self.side, self.side


def clip_crop(landmarks: np.ndarray, frame_size: tuple[int, int], size: int,
              config: CropConfig | None = None) -> CropBox:
    """The crop for a clip from its tracked landmarks.

    Args:
        landmarks: float [N, P, ≥2] source pixels of the tracked frames (at least one).
        frame_size: ``(width, height)`` of the source frames.
        size: output side in pixels.
    """
    config = config or CropConfig()
    points = np.asarray(landmarks, np.float64)[..., :2]
    if points.ndim != 3 or len(points) == 0:
        raise ValueError(f"landmarks must be [N ≥ 1, P, 2], got {points.shape}")
    width, height = frame_size
    lo, hi = points.min(1), points.max(1)                       # [N, 2]
    centres = (lo + hi) / 2
    face = float(np.median((hi - lo).max(1)))
    p = config.motion_percentile
    travel = np.percentile(centres, 100 - p, axis=0) - np.percentile(centres, p, axis=0)
    centre = (np.percentile(centres, 100 - p, axis=0) + np.percentile(centres, p, axis=0)) / 2
    side = config.head_scale * face + float(travel.max())
    side = int(round(min(side, width, height)))
    side = max(side, 2)
    x = centre[0] - side / 2
    y = centre[1] - config.face_center_y * side
    x = int(round(min(max(x, 0), width - side)))
    y = int(round(min(max(y, 0), height - side)))
    return CropBox(x, y, side, int(size))
