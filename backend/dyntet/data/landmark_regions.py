"""Where the mouth and the eyes are in a frame, from its tracked MediaPipe landmarks.

People judge a talking head by its mouth and eyes, which cover a few percent of the head: a head PSNR
can improve while teeth and eyelids stay smeared. The evaluation therefore also scores boxes around
them. The index sets are MediaPipe 0.10.21's ``FACEMESH_LIPS``, ``FACEMESH_RIGHT_EYE`` and
``FACEMESH_LEFT_EYE`` contours (478-point face mesh, ``refine_landmarks=True``), written out so that
evaluating needs no MediaPipe import; a test checks them against the wheel.
"""

from __future__ import annotations

import numpy as np

LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
        270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
NUM_LANDMARKS = 478
INNER_LIPS = (13, 14)
"""The midpoints of the upper and lower inner lip: their distance is the mouth's opening."""

MARGIN = 0.25
"""Each box grows by this fraction of its width on every side: the contours run along the lip and
eyelid edges, and what smears (teeth, lashes, the lid crease) lies just inside or outside them."""


def region_masks(landmarks: np.ndarray, source_size: int, size: int) -> dict[str, np.ndarray] | None:
    """Boolean masks [size, size] of the ``mouth`` and ``eyes`` boxes of one frame.

    Args:
        landmarks: float [478, 2] in pixels of a ``source_size`` square frame (the dataset's crop).
        source_size: side of the frame the landmarks refer to; ``size``: side of the image to score.

    Returns None when the landmarks are not MediaPipe's 478 points (a synthetic dataset, say).
    """
    points = np.asarray(landmarks, np.float64)
    if points.shape != (NUM_LANDMARKS, 2) or not np.isfinite(points).all():
        return None
    points = points * (size / source_size)
    masks = {}
    for name, groups in (("mouth", (LIPS,)), ("eyes", (RIGHT_EYE, LEFT_EYE))):
        mask = np.zeros((size, size), bool)
        for group in groups:
            lo, hi = points[list(group)].min(0), points[list(group)].max(0)
            pad = MARGIN * (hi[0] - lo[0])
            x0, y0 = np.floor(np.clip(lo - pad, 0, size)).astype(int)
            x1, y1 = np.ceil(np.clip(hi + pad, 0, size)).astype(int)
            mask[y0:y1, x0:x1] = True
        masks[name] = mask
    return masks
