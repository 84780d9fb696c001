"""Which training frame each step sees: uniformly, or more often the rarer its expression.

Why: a preview run sees each frame a handful of times, and the states a clip holds only briefly (blinks,
squints, a wide-open mouth) are a tenth of its frames or less; drawn uniformly they stay underfit
(docs/benchmarks.md: obama_b's closed-lid frames score 5 dB below the rest in the eye box, on training
frames too). A frame's rarity is how far its face is from its nearest neighbours among the clip's faces
(the mean distance of face-model surface motion to its ``k`` nearest frames), taken for the eyes, the
mouth and the whole face apart, each relative to its median, and the largest kept: a blink is rare in
the eyes while the mouth is doing something common.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from dyntet.data.landmark_regions import LEFT_EYE, LIPS, RIGHT_EYE
from dyntet.formats.dataset import FaceModel

NEIGHBOURS = 8
MAX_RATIO = 8.0
"""Cap on how much more often the rarest frame is drawn than the commonest (a tracking glitch is rare too)."""


def expression_rarity(face_model: FaceModel, expression: np.ndarray, points: list[int] | None = None,
                      neighbours: int = NEIGHBOURS) -> np.ndarray:
    """float [T] ≥ 0: mean distance (metres, RMS over the face-model ``points``, all when None) from each
    frame's face under α [T, K] to its ``neighbours`` nearest other frames' faces."""
    alpha = np.asarray(expression, np.float64)
    if len(alpha) < 2:
        return np.zeros(len(alpha))
    basis = np.asarray(face_model.expression_basis, np.float64)           # [K, P, 3]
    if points is not None:
        basis = basis[:, points]
    faces = np.tensordot(alpha, basis, axes=([1], [0])).reshape(len(alpha), -1) / np.sqrt(basis.shape[1])
    k = min(neighbours, len(alpha) - 1)
    dist, _ = cKDTree(faces).query(faces, k=k + 1)                         # column 0 is the frame itself
    return dist[:, 1:].mean(1)


def regional_rarity(face_model: FaceModel, expression: np.ndarray) -> np.ndarray:
    """float [T]: the largest of the eyes', the mouth's and the whole face's rarity, each over its median
    (the whole face only, for a face model without MediaPipe's points)."""
    regions: list[list[int] | None] = [None]
    if face_model.expression_basis.shape[1] > max(LIPS + RIGHT_EYE + LEFT_EYE):
        regions += [list(RIGHT_EYE + LEFT_EYE), list(LIPS)]
    relative = []
    for points in regions:
        rarity = expression_rarity(face_model, expression, points)
        median = float(np.median(rarity))
        relative.append(rarity / median if median > 0 else np.ones_like(rarity))
    return np.max(relative, axis=0)


def frame_weights(face_model: FaceModel, expression: np.ndarray, power: float) -> np.ndarray:
    """float [T] drawing probabilities ∝ :func:`regional_rarity`^power, spread capped at
    :data:`MAX_RATIO`; ``power`` 0 is uniform."""
    count = len(expression)
    if power <= 0 or count < 2:
        return np.full(count, 1.0 / max(count, 1))
    weights = np.maximum(regional_rarity(face_model, expression), 1e-6) ** power
    weights = np.clip(weights, weights.max() / MAX_RATIO, None)
    return weights / weights.sum()


class FrameSampler:
    """Draws batches of positions into a split's frames with :func:`frame_weights`."""

    def __init__(self, face_model: FaceModel, expression: np.ndarray, power: float) -> None:
        self.count = len(expression)
        self.uniform = power <= 0
        self.weights = torch.from_numpy(frame_weights(face_model, expression, power))

    def draw(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """int64 [batch] positions in [0, count)."""
        if self.uniform:  # the reference draw (and the random stream of runs trained before this option)
            return torch.randint(0, self.count, (batch,), generator=generator)
        return torch.multinomial(self.weights, batch, replacement=True, generator=generator)
