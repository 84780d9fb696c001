"""Head / torso / background labels per frame, and the clip's background plate.

Labels (``dyntet.formats.dataset``): 0 background, 1 torso, 2 head. MediaPipe's selfie segmentation
(general model, from the wheel) separates the person from the background; the landmarks split the
person into head and torso along a *neck line*: perpendicular to the face's up direction, a fixed
fraction of the face height below the chin (the paper's head mask includes the neck down to under
the jaw). Everything of the person above the line — face, hair, ears, neck — is head; below is torso.
The face itself (the landmarks' hull) is always head, even where segmentation hesitates.

Below the chin only a neck-wide band is head, so shoulders that rise to chin level stay torso; and,
when the frame's colours are given, only the skin-coloured part of that band (chroma within reach of
the face's own skin), joined to the face: a collar or jacket inside the band stays torso, so the mesh is
not asked to grow clothes it cannot model. With colours, the same skin test also decides the *jaw
zone*: the person's pixels outside the face from the chin up to ``jaw_zone_height`` face heights above
it. There the head is only neck and ear lobes; a jacket shoulder that rises above the chin line when the
head tilts, or hair that falls to the shoulders, stays torso (measured on a news clip: silhouette
disagreement, mostly such jacket wedges, was 31 % of a trained avatar's head-region error).

The background plate is the per-pixel temporal median of the pixels labelled background (slightly
eroded, so hair edges do not bleed in); pixels the subject never uncovered are inpainted.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dyntet.formats.dataset import MASK_BACKGROUND, MASK_HEAD, MASK_TORSO
from dyntet.face.topology import CHIN, FOREHEAD, LEFT_CHEEK, RIGHT_CHEEK


@dataclass
class MaskConfig:
    """How frames are labelled."""

    neck_below_chin: float = 0.3
    """Distance of the head/torso line below the chin, in face heights (chin to forehead)."""
    neck_half_width: float = 0.4
    """Half width of the neck band below the chin, in face widths (cheek 234 to cheek 454)."""
    threshold: float = 0.5
    """Selfie-segmentation probability above which a pixel is the person."""
    neck_skin_only: bool = True
    """Below the chin, label as head only the skin-coloured pixels of the band (needs the frame)."""
    skin_distance: float = 3.5
    """How far (Mahalanobis, in the face's chromaticity spread) a neck pixel's colour may be from the face's."""
    jaw_zone_height: float = 0.35
    """With the skin test: up to this many face heights above the chin, pixels outside the face are head
    only when skin-coloured and joined to the face (ear lobes end about here)."""
    background_erode_px: int = 3
    """Background pixels this close to the person (crop pixels at 512, scaled with size) are not used
    for the plate."""
    plate_frames: int = 90
    """At most this many frames (evenly spread) go into the plate's median."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.neck_below_chin <= 2.0:
            raise ValueError(f"neck_below_chin must be in [0, 2], got {self.neck_below_chin}")
        if not 0.0 < self.neck_half_width <= 2.0:
            raise ValueError(f"neck_half_width must be in (0, 2], got {self.neck_half_width}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not 0.0 <= self.jaw_zone_height <= 1.0:
            raise ValueError(f"jaw_zone_height must be in [0, 1], got {self.jaw_zone_height}")
        if self.skin_distance <= 0.0:
            raise ValueError(f"skin_distance must be > 0, got {self.skin_distance}")
        if self.background_erode_px < 0 or self.plate_frames < 1:
            raise ValueError("background_erode_px must be ≥ 0 and plate_frames ≥ 1")


class PersonSegmenter:
    """MediaPipe selfie segmentation (general 256×256 model). One per process or clip."""

    def __init__(self) -> None:
        from mediapipe.python.solutions import selfie_segmentation

        self._model = selfie_segmentation.SelfieSegmentation(model_selection=0)

    def probability(self, frame: np.ndarray) -> np.ndarray:
        """Person probability float32 [H, W] in [0, 1] for a uint8 [H, W, 3] RGB frame."""
        result = self._model.process(np.ascontiguousarray(frame))
        return np.asarray(result.segmentation_mask, np.float32)

    def close(self) -> None:
        self._model.close()

    def __enter__(self) -> "PersonSegmenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def label_frame(person: np.ndarray, landmarks: np.ndarray, config: MaskConfig | None = None,
                frame: np.ndarray | None = None) -> np.ndarray:
    """Labels of one frame.

    Args:
        person: float [S, S] person probability (or a 0/1 mask).
        landmarks: float [478, ≥2] the frame's landmarks in the same pixels (x right, y down).
        frame: optional uint8 [S, S, 3] RGB; with it (and ``config.neck_skin_only``) only skin-coloured
            pixels of the neck band are head.

    Returns:
        uint8 [S, S] with 0 background, 1 torso, 2 head.
    """
    config = config or MaskConfig()
    height, width = person.shape
    pts = np.asarray(landmarks, np.float64)[:, :2]
    person_mask = person > config.threshold
    up = pts[FOREHEAD] - pts[CHIN]
    face_height = float(np.linalg.norm(up))
    labels = np.full((height, width), MASK_BACKGROUND, np.uint8)
    labels[person_mask] = MASK_TORSO
    hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))
    face = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(face, hull, 1, lineType=cv2.LINE_8, shift=4)
    if face_height > 1e-6:
        up /= face_height
        right = np.array([-up[1], up[0]])
        face_width = float(np.linalg.norm(pts[LEFT_CHEEK] - pts[RIGHT_CHEEK]))
        ys, xs = np.mgrid[0:height, 0:width]
        dx, dy = xs + 0.5 - pts[CHIN][0], ys + 0.5 - pts[CHIN][1]   # pixel centres relative to the chin
        along = dx * up[0] + dy * up[1]                               # > 0 above the chin
        across = np.abs(dx * right[0] + dy * right[1])
        above = along > 0
        neck_zone = (~above & (along > -config.neck_below_chin * face_height)
                     & (across < config.neck_half_width * face_width))
        skin_test = frame is not None and config.neck_skin_only
        if skin_test:
            jaw_zone = above & (along <= config.jaw_zone_height * face_height) & (face == 0)
            neck = skin_like(frame, face > 0, person_mask & (neck_zone | jaw_zone), config.skin_distance)
            labels[person_mask & above & ~jaw_zone] = MASK_HEAD
        else:
            neck = person_mask & neck_zone
            labels[person_mask & above] = MASK_HEAD
        labels[neck] = MASK_HEAD
        if skin_test:
            _keep_neck_joined_to_face(labels, neck, face > 0)
    labels[face > 0] = MASK_HEAD
    return labels


def skin_like(frame: np.ndarray, face: np.ndarray, where: np.ndarray, max_distance: float) -> np.ndarray:
    """bool [S, S], true at the pixels of ``where`` whose chromaticity (r, g) = (R, G) / (R + G + B) —
    unchanged when shading scales the colour, as under the chin — lies within ``max_distance``
    Mahalanobis units of the face's skin. The skin model is a Gaussian fitted to (at most 4096 of) the
    face pixels, refitted on its own inliers so eyes, brows and lips do not widen it. Near-black pixels
    have no usable chromaticity and are not skin. Only ``where`` is evaluated (a few ms per 512² frame)."""
    samples = _chromaticity(frame[face])
    samples = samples[np.isfinite(samples[:, 0])]
    samples = samples[::max(1, len(samples) // 4096)]
    if len(samples) < 16:
        return where.copy()  # no face to learn from: do not second-guess the band
    keep = np.ones(len(samples), bool)
    for _ in range(3):
        mean = samples[keep].mean(0)
        cov = np.cov(samples[keep].T) + np.eye(2) * 0.005 ** 2  # floor: flat-lit skin has a tiny spread
        inv = np.linalg.inv(cov)
        diff = samples - mean
        keep = np.einsum("ni,ij,nj->n", diff, inv, diff) < max_distance ** 2
        if keep.sum() < 16:
            return where.copy()
    out = np.zeros(where.shape, bool)
    diff = _chromaticity(frame[where]) - mean
    with np.errstate(invalid="ignore"):
        out[where] = np.einsum("ni,ij,nj->n", diff, inv, diff) < max_distance ** 2  # NaN (black) → False
    return out


def _chromaticity(pixels: np.ndarray) -> np.ndarray:
    """float [N, 2] (r, g) of uint8 [N, 3] RGB pixels; NaN where the pixel is too dark to tell."""
    rgb = pixels.astype(np.float32)
    total = rgb.sum(-1, keepdims=True)
    chroma = rgb[:, :2] / np.maximum(total, 1.0)
    chroma[total[:, 0] <= 3 * 20.0] = np.nan
    return chroma


def _keep_neck_joined_to_face(labels: np.ndarray, neck: np.ndarray, face: np.ndarray) -> None:
    """Skin-coloured specks of the band that do not touch the rest of the head (a hand, a wooden wall
    behind the collar) go back to torso."""
    head = (labels == MASK_HEAD) | face
    count, components = cv2.connectedComponents(head.astype(np.uint8), connectivity=8)
    if count <= 2:
        return
    joined = np.unique(components[face & (components > 0)])
    stray = neck & ~np.isin(components, joined)
    labels[stray] = MASK_TORSO


def _masked_median(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-pixel median over axis 0 of uint8 [N, h, w, 3] where ``valid`` bool [N, h, w]; 0 where none is."""
    data = values.astype(np.float32)
    data[~valid] = np.inf                                   # invalid samples sort after every real value
    data.sort(axis=0)
    count = np.broadcast_to(valid.sum(0)[..., None], data.shape[1:])
    lower = np.take_along_axis(data, (np.maximum(count - 1, 0) // 2)[None], 0)[0]
    upper = np.take_along_axis(data, (count // 2)[None], 0)[0]
    median = np.where(count > 0, (lower + upper) / 2, 0.0)
    return np.round(median).clip(0, 255).astype(np.uint8)


def background_plate(frames: np.ndarray, labels: np.ndarray, config: MaskConfig | None = None) -> np.ndarray:
    """Temporal median of background pixels, holes inpainted.

    Args:
        frames: uint8 [N, S, S, 3] RGB; labels: uint8 [N, S, S].

    Returns:
        uint8 [S, S, 3] RGB plate.
    """
    config = config or MaskConfig()
    frames = np.asarray(frames)
    labels = np.asarray(labels)
    if frames.ndim != 4 or labels.shape != frames.shape[:3]:
        raise ValueError(f"frames [N, S, S, 3] and labels [N, S, S] disagree: {frames.shape}, {labels.shape}")
    size = frames.shape[1]
    radius = int(round(config.background_erode_px * size / 512))
    usable = labels == MASK_BACKGROUND
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        usable = np.stack([cv2.erode(u.astype(np.uint8), kernel) > 0 for u in usable])
    plate = np.zeros(frames.shape[1:], np.uint8)
    seen = usable.any(0)
    rows = max(1, (1 << 22) // max(1, frames.shape[0] * frames.shape[2] * 3))
    for r0 in range(0, size, rows):
        plate[r0:r0 + rows] = _masked_median(frames[:, r0:r0 + rows], usable[:, r0:r0 + rows])
    holes = (~seen).astype(np.uint8) * 255
    if holes.any():
        if seen.any():
            plate = cv2.inpaint(plate, holes, max(3, size // 64), cv2.INPAINT_TELEA)
        else:
            plate[:] = np.median(frames.reshape(-1, 3), axis=0).astype(np.uint8)
    return plate
