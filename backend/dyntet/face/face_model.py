"""The landmark face model: a per-subject linear model built from tracked MediaPipe shapes.

The paper drives DynTet with BFM expression coefficients α and supervises geometry with the BFM mesh
(Eqs. 14–15). BFM and FLAME need registration and cannot ship, so by default we build the linear
model from the subject's own tracked face (design §3):

1. :func:`normalize_shapes` — each frame's 478 MediaPipe points (image-plane x, y and MediaPipe's
   relative depth z, all in pixels) are brought into one *head space*: similarity Procrustes against
   a common reference on the points that move least (forehead, nose bridge, temples), so head pose
   and distance to the camera drop out and only expression remains. Axes follow
   ``docs/architecture.md``: +X from the right cheek (234) to the left (454), +Y from chin (152)
   towards forehead (10), +Z out of the face; origin between the cheek points 234/454 (about
   the ears' depth, near the head's centre). Metres come from an assumed interpupillary distance
   (iris centres 468/473, 63 mm — the adult mean; a subject's true IPD differs by ±4 mm, which
   scales the head and the camera distance together and leaves images unchanged).
2. :class:`LandmarkFaceModelBuilder` — mean shape V̄ over the training frames, PCA of the residuals
   → expression basis U (scaled so α has unit variance over the training frames), α for every frame
   by projection, and the MediaPipe triangles (:mod:`dyntet.face.topology`).

A BFM or FLAME loader can replace step 2 behind :class:`FaceModelBuilder`: it receives the same
pose-normalised metric landmark shapes and returns a dense model plus where the 478 landmarks sit on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dyntet.formats.dataset import FaceModel
from dyntet.face.align import apply_similarity, generalized_procrustes, similarity_align, stable_point_weights
from dyntet.face.topology import CHIN, FOREHEAD, LEFT_CHEEK, RIGHT_CHEEK, face_mesh_triangles
from dyntet.face.tracking import NUM_LANDMARKS

RIGHT_IRIS, LEFT_IRIS = 468, 473
"""Iris-centre landmarks (subject's right and left eye)."""
INTERPUPILLARY_M = 0.063
"""Assumed distance between the pupils in metres (adult mean)."""


def image_to_shape(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe pixels (x right, y down, z smaller = nearer) → a right-handed shape (x, −y, −z).

    Args:
        landmarks: float [..., P, 3] pixels. Returns: float64 [..., P, 3] (+Y up, +Z towards the camera).
    """
    points = np.asarray(landmarks, np.float64)
    return points * np.array([1.0, -1.0, -1.0])


@dataclass
class NormalizedShapes:
    """Landmark shapes in head space and how each frame's input shape was placed."""

    head: np.ndarray
    """float64 [T, P, 3] metres, head space, pose removed."""
    input_from_head: tuple[np.ndarray, np.ndarray, np.ndarray]
    """Per-frame similarity ``(R [T, 3, 3], s [T], t [T, 3])`` with ``input ≈ s R head + t``."""
    weights: np.ndarray
    """float64 [P] the alignment weights (1 on the stable points)."""


def _head_frame(mean: np.ndarray, interpupillary_m: float) -> tuple[np.ndarray, float, np.ndarray]:
    """Rotation, scale and origin taking the aligned mean into head space: ``head = k R (x − o)``."""
    x_axis = mean[LEFT_CHEEK] - mean[RIGHT_CHEEK]
    x_axis /= np.linalg.norm(x_axis)
    up = mean[FOREHEAD] - mean[CHIN]
    y_axis = up - (up @ x_axis) * x_axis
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    rot = np.stack([x_axis, y_axis, z_axis])
    ipd = np.linalg.norm(mean[LEFT_IRIS] - mean[RIGHT_IRIS])
    if not np.isfinite(ipd) or ipd <= 0:
        raise ValueError("degenerate landmark shapes: the iris centres coincide")
    origin = 0.5 * (mean[LEFT_CHEEK] + mean[RIGHT_CHEEK])
    return rot, interpupillary_m / ipd, origin


def normalize_shapes(shapes: np.ndarray, train: np.ndarray | None = None, *,
                     interpupillary_m: float = INTERPUPILLARY_M, stable_fraction: float = 0.35) -> NormalizedShapes:
    """Remove pose and scale from landmark shapes and express them in head space (metres).

    Args:
        shapes: float [T, 478, 3] right-handed shapes, e.g. :func:`image_to_shape` of tracked pixels,
            or perspective-corrected camera-space points.
        train: bool [T] frames that define the reference (default: all).
        interpupillary_m: the assumed pupil distance that sets the metric scale.
        stable_fraction: fraction of points used for alignment (those that move least).
    """
    shapes = np.asarray(shapes, np.float64)
    if shapes.ndim != 3 or shapes.shape[1:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"shapes must be [T, {NUM_LANDMARKS}, 3], got {shapes.shape}")
    if not np.isfinite(shapes).all():
        raise ValueError("shapes contain NaN or infinite values: pass only tracked frames")
    train = np.ones(len(shapes), bool) if train is None else np.asarray(train, bool)
    if train.shape != (len(shapes),) or not train.any():
        raise ValueError("train must be a bool [T] mask selecting at least one frame")
    aligned, _ = generalized_procrustes(shapes[train], None, scale=True, iterations=3)
    weights = stable_point_weights(aligned, stable_fraction)
    aligned, reference = generalized_procrustes(shapes[train], weights, scale=True, iterations=5)
    rot_h, k, origin = _head_frame(aligned.mean(0), interpupillary_m)
    reference_head = k * (reference - origin) @ rot_h.T
    rot, s, t = similarity_align(shapes, reference_head, weights, scale=True)  # head ← input
    head = apply_similarity(shapes, rot, s, t)
    inverse = (np.swapaxes(rot, -1, -2), 1.0 / s, -np.einsum("tji,tj->ti", rot, t) / s[:, None])
    return NormalizedShapes(head, inverse, weights)


@dataclass
class FaceModelConfig:
    """How the landmark face model is built."""

    num_expression: int | None = None
    """K; None chooses it from the explained variance, within [min_expression, max_expression]."""
    min_expression: int = 32
    max_expression: int = 64
    explained_variance: float = 0.98
    """Automatic K: the fewest components explaining this fraction of the expression variance."""
    fill_holes: bool = True
    """Close eyes and mouth with triangles (898 faces, like the canonical model) or leave them open."""

    def __post_init__(self) -> None:
        if self.num_expression is not None and self.num_expression < 1:
            raise ValueError(f"num_expression must be ≥ 1, got {self.num_expression}")
        if not 1 <= self.min_expression <= self.max_expression:
            raise ValueError(f"need 1 ≤ min_expression ≤ max_expression, got {self.min_expression}, "
                             f"{self.max_expression}")
        if not 0.0 < self.explained_variance <= 1.0:
            raise ValueError(f"explained_variance must be in (0, 1], got {self.explained_variance}")


@dataclass
class FaceModelFit:
    """A face model fitted to a clip: the model, α per frame and how to place the 478 landmarks."""

    face_model: FaceModel
    expression: np.ndarray
    """float32 [T, K] α per frame."""
    explained_variance: float
    """Fraction of the training frames' expression variance the K components explain."""
    variance_ratio: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """float64 [R] explained-variance ratio of every component computed (for the report)."""

    def landmark_points(self, expression: np.ndarray) -> np.ndarray:
        """The 478 MediaPipe landmarks in head space (metres): float [..., 478, 3] for α [..., K]."""
        return self.face_model.shape(expression)[..., :NUM_LANDMARKS, :]


class FaceModelBuilder(Protocol):
    """What a face model must offer the preprocessing pipeline (landmark model today, BFM/FLAME later)."""

    def build(self, head_shapes: np.ndarray, train: np.ndarray) -> FaceModelFit:
        """Fit to pose-normalised metric landmark shapes float [T, 478, 3] (head space); ``train``
        bool [T] marks the frames the model may learn from; α is returned for every frame."""
        ...


def choose_num_expression(variance_ratio: np.ndarray, config: FaceModelConfig, max_rank: int) -> int:
    """K from the explained-variance curve, clamped to the config's range and to the data's rank."""
    if config.num_expression is not None:
        k = config.num_expression
    else:
        cumulative = np.cumsum(variance_ratio)
        k = int(np.searchsorted(cumulative, config.explained_variance - 1e-12) + 1)
        k = min(max(k, config.min_expression), config.max_expression)
    return max(1, min(k, max_rank))


class LandmarkFaceModelBuilder:
    """Mean shape + PCA expression basis over the MediaPipe points (the default face model)."""

    def __init__(self, config: FaceModelConfig | None = None) -> None:
        self.config = config or FaceModelConfig()

    def build(self, head_shapes: np.ndarray, train: np.ndarray) -> FaceModelFit:
        shapes = np.asarray(head_shapes, np.float64)
        train = np.asarray(train, bool)
        if shapes.ndim != 3 or shapes.shape[1:] != (NUM_LANDMARKS, 3):
            raise ValueError(f"head_shapes must be [T, {NUM_LANDMARKS}, 3], got {shapes.shape}")
        if train.shape != (len(shapes),) or train.sum() < 2:
            raise ValueError("the face model needs at least 2 training frames")
        num_points = shapes.shape[1]
        mean = shapes[train].mean(0)
        residual = (shapes - mean).reshape(len(shapes), -1)
        train_residual = residual[train]
        n = train_residual.shape[0]
        cov = train_residual.T @ train_residual / (n - 1)
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1]
        eigval = np.clip(eigval[order], 0.0, None)
        eigvec = eigvec[:, order]
        total = eigval.sum()
        rank = int(min(n - 1, (eigval > max(total, 1e-30) * 1e-12).sum()))
        ratio = eigval / total if total > 0 else np.zeros_like(eigval)
        k = choose_num_expression(ratio[: max(rank, 1)], self.config, max(rank, 1))
        vectors = eigvec[:, :k]
        # Deterministic signs: the largest entry of each component is positive.
        signs = np.sign(vectors[np.abs(vectors).argmax(0), np.arange(k)])
        vectors = vectors * np.where(signs == 0, 1.0, signs)
        sigma = np.sqrt(np.maximum(eigval[:k], 1e-30))
        basis = (vectors * sigma).T.reshape(k, num_points, 3)           # one std-dev per unit of α
        expression = (residual @ vectors) / sigma                        # [T, K]
        model = FaceModel(mean.astype(np.float32), basis.astype(np.float32),
                          face_mesh_triangles(self.config.fill_holes))
        return FaceModelFit(model, expression.astype(np.float32), float(ratio[:k].sum()), ratio[: max(rank, 1)])
