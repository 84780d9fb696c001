"""The face model's expression motion carried off its surface into the grid: a prior under f2.

Why: f2 is a smooth MLP of position, and the upper and lower lips lie a few millimetres apart at ᾱ; it
has to tear the field apart there to open the mouth, and in a preview run it learns only a fraction of
the tracked lip motion (``lip_motion_ratio``, docs/benchmarks.md). The face model already knows how
each of its points moves with α. Each grid point near the face takes the expression basis of its
nearest face-model surface points (inverse-distance weighted, so upper-lip points take the upper lip's
motion), faded out with the distance from the face; then Δv = e·f2 + B(x)(α − ᾱ), and f2 learns only
what the face model gets wrong. Zero at ᾱ, so the canonical mesh (Eq. 8) is unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from dyntet.formats.dataset import FaceModel
from dyntet.model.face_prior import HeadToGrid, sample_face

NEIGHBOURS = 8
"""Face-surface samples blended per point: enough that the basis varies smoothly between grid points."""
SURFACE_SAMPLES = 20_000
"""Dense samples of the face surface (≈ 1.5 mm apart on a face) the basis is read from."""


class FaceMotionField:
    """B(x): float [K, 3] per point, grid units of offset per unit of α, for points in grid space.

    Args:
        face_model: the subject's linear face model.
        mean_expression: float [K] ᾱ (the surface is taken at the canonical expression).
        head_to_grid: the avatar's head → grid map.
        reach_m: distance from the face surface (metres) at which the motion has faded to nothing; full
            motion within a third of it.
    """

    def __init__(self, face_model: FaceModel, mean_expression: np.ndarray, head_to_grid: HeadToGrid,
                 reach_m: float) -> None:
        if reach_m <= 0:
            raise ValueError(f"the face motion's reach must be positive (metres), got {reach_m}")
        samples = sample_face(face_model, mean_expression, head_to_grid, SURFACE_SAMPLES,
                              torch.Generator().manual_seed(0))
        self._tree = cKDTree(samples.points.numpy().astype(np.float64))
        self._basis = samples.basis.permute(1, 0, 2).numpy()                           # [S, K, 3]
        self.num_expression = self._basis.shape[1]
        self.outer = reach_m * float(head_to_grid.scale)
        self.inner = self.outer / 3.0

    def within_reach(self, points: np.ndarray) -> np.ndarray:
        """bool [N]: the points float [N, 3] (grid space) the motion reaches at all."""
        dist, _ = self._tree.query(np.asarray(points, np.float64), k=1, distance_upper_bound=self.outer)
        return np.isfinite(dist)

    def weights(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For points float [N, 3] grid space: sample indices int [N, k] and weights float [N, k]
        (inverse distance × fade; rows of far points are all zero)."""
        dist, idx = self._tree.query(np.asarray(points, np.float64), k=NEIGHBOURS)
        inverse = 1.0 / (dist + 1e-4)
        blend = inverse / inverse.sum(1, keepdims=True)
        t = np.clip((dist[:, 0] - self.inner) / (self.outer - self.inner), 0.0, 1.0)
        fade = 1.0 - t * t * (3.0 - 2.0 * t)                                            # smoothstep
        return idx, (blend * fade[:, None]).astype(np.float32)

    def basis_at(self, points: np.ndarray) -> np.ndarray:
        """float [N, K, 3]: the blended, faded expression basis at points float [N, 3] (grid space)."""
        idx, weights = self.weights(points)
        return np.einsum("nk,nkcd->ncd", weights, self._basis[idx]).astype(np.float32)


class GridFaceMotion(torch.nn.Module):
    """B(x) tabulated on the grid vertices the face reaches (the others get no motion).

    ``slot`` int64 [V] indexes ``basis`` float [M + 1, K, 3] (row M is zero: vertices out of reach).
    Buffers are not saved: they are rebuilt from the face model, which every run folder carries.
    """

    def __init__(self, field: FaceMotionField, grid_vertices: torch.Tensor) -> None:
        super().__init__()
        vertices = grid_vertices.detach().cpu().numpy()
        near = np.flatnonzero(field.within_reach(vertices))
        basis = np.zeros((len(near) + 1, field.num_expression, 3), np.float32)
        basis[:-1] = field.basis_at(vertices[near])
        slot = np.full(len(vertices), len(near), np.int64)
        slot[near] = np.arange(len(near))
        self.register_buffer("slot", torch.from_numpy(slot), persistent=False)
        self.register_buffer("basis", torch.from_numpy(basis), persistent=False)

    def gather(self, vertex_index: torch.Tensor) -> torch.Tensor:
        """float [U, K, 3] for grid-vertex indices int64 [U]."""
        return self.basis.index_select(0, self.slot.index_select(0, vertex_index))


def motion_offsets(basis: torch.Tensor, expression_delta: torch.Tensor) -> torch.Tensor:
    """Offsets float [B, N, 3] for a basis float [N, K, 3] and α − ᾱ float [B, K]."""
    return torch.einsum("bk,nkd->bnd", expression_delta, basis)
