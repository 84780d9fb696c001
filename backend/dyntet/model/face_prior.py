"""What the face model tells the geometry: dense surface samples (Eqs. 14–15) and the initial SDF.

All positions here are in grid space unless a name says ``_m`` (metres, head space).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from dyntet.formats.dataset import FaceModel


@dataclass
class FaceSamples:
    """Points drawn on the face-model triangles at the mean expression ᾱ (grid space).

    ``points`` float [N, 3], ``normals`` float [N, 3] (unit, outward), ``basis`` float [K, N, 3] the
    expression basis interpolated to the points (grid units per unit of α).
    """

    points: torch.Tensor
    normals: torch.Tensor
    basis: torch.Tensor


def face_normals_np(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (points[triangles[:, i]] for i in range(3))
    normals = np.cross(b - a, c - a)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def sample_face(face_model: FaceModel, mean_expression: np.ndarray, head_to_grid, count: int,
                generator: torch.Generator | None = None, emphasis: np.ndarray | None = None) -> FaceSamples:
    """Sample ``count`` points on the face model at ᾱ (barycentric weights): uniformly by area, or by
    area × ``emphasis`` (float [F], one factor per triangle; see :func:`motion_emphasis`)."""
    mean_m = face_model.shape(mean_expression).astype(np.float32)
    triangles = face_model.triangles.astype(np.int64)
    a, b, c = (mean_m[triangles[:, i]] for i in range(3))
    areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    density = areas if emphasis is None else areas * emphasis
    probs = torch.from_numpy(density / density.sum())
    tri = torch.multinomial(probs, count, replacement=True, generator=generator).numpy()
    r1, r2 = torch.rand(2, count, generator=generator).numpy()
    s1 = np.sqrt(r1)
    weights = np.stack([1 - s1, s1 * (1 - r2), s1 * r2], axis=1).astype(np.float32)  # [N, 3]
    corners = triangles[tri]                                                           # [N, 3]
    points_m = np.einsum("nc,ncd->nd", weights, mean_m[corners])
    basis_m = np.einsum("nc,kncd->knd", weights, face_model.expression_basis[:, corners])
    normals = face_normals_np(mean_m, triangles)[tri]
    scale = float(head_to_grid.scale)
    return FaceSamples(points=head_to_grid(torch.from_numpy(points_m)),
                       normals=torch.from_numpy(normals.astype(np.float32)),
                       basis=torch.from_numpy((basis_m * scale).astype(np.float32)))


def motion_emphasis(face_model: FaceModel, expression_delta: np.ndarray, strength: float) -> np.ndarray:
    """float [F]: ``1 + strength · m / mean(m)``, m each triangle's RMS displacement under the tracked
    α − ᾱ [T, K]. Why: the lips are a few percent of the face's area but most of its motion, and Eq. 15
    averaged by area leaves them to a few samples a step (the learnt mouth then hardly opens)."""
    step = max(1, len(expression_delta) // 200)
    moved = np.tensordot(np.asarray(expression_delta, np.float64)[::step], face_model.expression_basis, axes=([1], [0]))
    per_point = np.sqrt((moved ** 2).sum(-1).mean(0))                                  # [P]
    per_triangle = per_point[face_model.triangles].mean(1)
    mean = float(per_triangle.mean())
    return 1.0 + strength * per_triangle / mean if mean > 0 else np.ones(len(per_triangle))


@dataclass
class HeadToGrid:
    """Affine map head space (metres) → grid space: ``(x − center) · scale``."""

    center: torch.Tensor  # float [3] metres
    scale: float          # grid units per metre

    def __call__(self, points_m: torch.Tensor) -> torch.Tensor:
        return (points_m - self.center.to(points_m)) * self.scale

    def inverse(self, points: torch.Tensor) -> torch.Tensor:
        return points / self.scale + self.center.to(points)


def head_frame(face_model: FaceModel, mean_expression: np.ndarray, grid_size_m: float) -> HeadToGrid:
    """Centre the grid on the head the face implies: the face sits at the front, the skull behind it."""
    pts = face_model.shape(mean_expression)
    lo, hi = pts.min(0), pts.max(0)
    height = hi[1] - lo[1]
    center = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2 + 0.08 * height, hi[2] - 0.5 * grid_size_m * 0.62],
                      np.float32)
    return HeadToGrid(torch.from_numpy(center), 1.0 / grid_size_m)


def head_prior_sdf(grid_points: torch.Tensor, face_model: FaceModel, mean_expression: np.ndarray,
                   to_grid: HeadToGrid, slab: float = 0.04) -> torch.Tensor:
    """A closed head-shaped signed distance (grid units, negative inside) for initialising f1.

    The union of an ellipsoidal skull behind the face and a slab just behind the face-model surface,
    so the first extracted mesh is already a head whose front is the tracked face.

    Args:
        grid_points: float [V, 3] grid space.
    Returns:
        float [V] signed distance in grid units.
    """
    mean_m = face_model.shape(mean_expression)
    face = to_grid(torch.from_numpy(mean_m.astype(np.float32))).numpy()
    lo, hi = face.min(0), face.max(0)
    width, height = hi[0] - lo[0], hi[1] - lo[1]
    radii = np.array([0.62 * width, 0.68 * height, 0.62 * height])
    center = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2 + 0.12 * height,
                       np.median(face[:, 2]) - radii[2] + 0.25 * slab])
    x = grid_points.numpy().astype(np.float64)
    q = (x - center) / radii
    ellipsoid = (np.linalg.norm(q, axis=1) - 1.0) * radii.min()

    # Signed distance to the face surface, from dense samples with their normals.
    samples = sample_face(face_model, mean_expression, to_grid, 60_000, torch.Generator().manual_seed(0))
    pts, nrm = samples.points.numpy(), samples.normals.numpy()
    dist, idx = cKDTree(pts).query(x, k=1)
    signed = np.einsum("nd,nd->n", x - pts[idx], nrm[idx])
    # Only trust it in front of/just behind the face and away from the face's open border.
    boundary = _boundary_mask(face_model, mean_m, to_grid, pts)
    usable = (~boundary[idx]) & (signed > -slab) & (dist < 2 * slab)
    face_sd = np.where(usable, np.where(signed < 0, signed, dist), np.inf)
    # Inside the slab behind the face: inside; union with the skull.
    return torch.from_numpy(np.minimum(ellipsoid, face_sd).astype(np.float32))


def _boundary_mask(face_model: FaceModel, mean_m: np.ndarray, to_grid: HeadToGrid, samples: np.ndarray) -> np.ndarray:
    """True for samples near the face mesh's open border (where "in front" is ill-defined)."""
    tris = face_model.triangles.astype(np.int64)
    edges = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    border_vertices = np.unique(uniq[counts == 1])
    if border_vertices.size == 0:
        return np.zeros(len(samples), bool)
    border = to_grid(torch.from_numpy(mean_m[border_vertices].astype(np.float32))).numpy()
    spacing = np.median(np.linalg.norm(border[1:] - border[:-1], axis=1)) if len(border) > 1 else 0.01
    d, _ = cKDTree(border).query(samples, k=1)
    return d < max(2.0 * spacing, 0.01)
