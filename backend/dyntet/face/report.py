"""The tracking report: numbers in ``report.json`` and a contact sheet a person can judge at a glance.

Silent tracker failures are the top complaint about talking-head pipelines, so every run leaves:

* ``report.json`` — frames kept and dropped (and why), reprojection error in pixels, pose jitter in
  degrees and millimetres per frame (raw and after smoothing), the face model's explained variance,
  the camera, the crop, timings and plain-language warnings.
* ``contact_sheet.png`` — sample frames with the head (green) and torso (blue) masks tinted in, the
  tracked landmarks (yellow) and the fitted face model projected through the fitted camera (red).
  Red on yellow means the camera and face model explain the tracking; red drifting off the face
  means they do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from dyntet.formats.dataset import MASK_HEAD, MASK_TORSO


def summary(values: np.ndarray) -> dict[str, float | None]:
    """Median, 95th percentile and maximum of a 1-D array (None when empty)."""
    values = np.asarray(values, np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"median": None, "p95": None, "max": None}
    return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95)),
            "max": float(values.max())}


@dataclass
class SheetFrame:
    """One tile of the contact sheet."""

    rgb: np.ndarray
    """uint8 [S, S, 3]."""
    labels: np.ndarray
    """uint8 [S, S] mask labels."""
    tracked: np.ndarray
    """float [P, 2] tracked landmarks, crop pixels."""
    fitted: np.ndarray
    """float [P, 2] projected face-model landmarks, crop pixels."""
    caption: str


def draw_tile(frame: SheetFrame, tile: int) -> np.ndarray:
    """One annotated tile uint8 [tile, tile, 3]."""
    size = frame.rgb.shape[0]
    image = frame.rgb.astype(np.float32)
    tint = np.zeros_like(image)
    tint[frame.labels == MASK_HEAD] = (40, 220, 60)
    tint[frame.labels == MASK_TORSO] = (50, 90, 240)
    alpha = np.where(frame.labels[..., None] > 0, 0.35, 0.0)
    image = (image * (1 - alpha) + tint * alpha).clip(0, 255).astype(np.uint8)
    image = cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA if tile < size else cv2.INTER_LINEAR)
    scale = tile / size
    image = np.ascontiguousarray(image)
    for points, colour, radius in ((frame.tracked, (255, 220, 0), 1), (frame.fitted, (255, 40, 40), 1)):
        for x, y in np.asarray(points, np.float64):
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(image, (int(round(x * scale * 4)), int(round(y * scale * 4))), radius * 4, colour,
                           -1, lineType=cv2.LINE_AA, shift=2)
    cv2.rectangle(image, (0, 0), (tile - 1, 18), (0, 0, 0), -1)
    cv2.putText(image, frame.caption, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def contact_sheet(frames: list[SheetFrame], columns: int = 4, tile: int = 256) -> np.ndarray:
    """A grid of annotated tiles, uint8 [rows · tile, columns · tile, 3]."""
    if not frames:
        raise ValueError("a contact sheet needs at least one frame")
    columns = max(1, min(columns, len(frames)))
    rows = -(-len(frames) // columns)
    sheet = np.full((rows * tile, columns * tile, 3), 32, np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        sheet[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = draw_tile(frame, tile)
    return sheet


def warnings_for(report: dict[str, Any], *, reproj_warn_px: float = 3.0, jitter_warn_deg: float = 0.5,
                 kept_warn: float = 0.9) -> list[str]:
    """Plain-language warnings for the numbers in a report."""
    out = []
    frames = report["frames"]
    if frames["kept_frac"] < kept_warn:
        out.append(f"the face was tracked in only {frames['kept_frac']:.0%} of the frames "
                   f"({frames['dropped_no_face']} dropped): check the contact sheet, trim the clip, or film "
                   f"with the face visible throughout")
    if report["faces"]["identities"] > 1 or report["faces"]["max_per_frame"] > 1:
        out.append(f"{max(report['faces']['identities'], report['faces']['max_per_frame'])} faces appear in "
                   f"the video; the largest, most consistently present one was used")
    reproj = report["reprojection_px"]["smoothed"]["median"]
    if reproj is not None and reproj > reproj_warn_px:
        out.append(f"median landmark reprojection error is {reproj:.1f} px (crop pixels): the head pose or "
                   f"face model fits poorly")
    jitter = report["jitter"]["smoothed_deg"]["median"]
    if jitter is not None and jitter > jitter_warn_deg:
        out.append(f"head pose jitter is {jitter:.2f}° per frame after smoothing: expect a shaky head")
    crop = report["crop"]
    if crop["upsampled"]:
        out.append(f"the head crop is {crop['side']} px in the source and is upsampled to {crop['size']} px: "
                   f"frames will look soft; a higher-resolution or closer shot helps")
    if report.get("audio") is None:
        out.append("the clip has no audio, so this avatar cannot be driven by a voice; if the sound was "
                   "recorded separately, attach it with `dyntet preprocess VIDEO -o DATASET --audio FILE`")
    if report["camera"]["focal_at_prior"]:
        out.append("the clip constrains the focal length weakly (little head rotation); a typical value was "
                   "assumed — fine for training, but distances are approximate")
    return out
