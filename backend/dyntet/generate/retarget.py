"""Carry another person's expressions into the avatar's face-model basis (cross-identity driving).

Each subject has its own linear face model ``shape(α) = V̄ + Σ_k α_k U_k`` (pose-normalised head space),
so the driver's coefficients α′ mean nothing in the target's basis. What transfers is the *motion*: the
driver's displacement field ``U′(α′ − ᾱ′)`` over the face. We

1. put the two faces in correspondence: point for point when they share a topology (two MediaPipe
   landmark models: the same 478 points and triangles), else by normalising both faces to their bounding
   boxes and locating every target point on the driver's face in the frontal (x, y) projection, where
   faces differ least (two synthetic subjects: their face models are different subsets of one icosphere);
2. scale the driver's displacements per axis by the ratio of the face sizes (a longer face opens its jaw
   further);
3. solve, once, the linear least-squares map ``M`` [K, K′] with ``U M ≈ s ⊙ Ũ′`` (Ũ′ the driver's basis
   carried to the target points), with a tiny ridge against near-degenerate bases;
4. re-centre as the paper does (its "Lip synchronization": α′ + (ᾱ − ᾱ′)): ``α = M (α′ − ᾱ′) + ᾱ``,
   so the driver's average face maps to the target's average face and only the motion around it
   carries over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

from dyntet.formats.dataset import FaceModel

MAX_NORMALISED_DISTANCE = 0.06
"""Target points further than this (in bounding-box-normalised units: the face spans [−1, 1]) from the
driver's face in the frontal projection have no counterpart (e.g. the driver's face model covers less of
the forehead) and are left out of the fit."""

_CANDIDATES = 12


class RetargetError(ValueError):
    """Two face models cannot be put in correspondence; the message says why."""


@dataclass
class Correspondence:
    """Where each target face-model point lies on the driver's face model.

    Attributes:
        kind: ``"topology"`` (same points and triangles: identity) or ``"surface"`` (frontal projection).
        corners: int64 [P, 3] driver point indices whose barycentric blend gives each target point.
        weights: float64 [P, 3] barycentric weights (rows sum to 1).
        valid: bool [P] target points with a counterpart (used by the fit).
        scale: float64 [3] per-axis size ratio target / driver (applied to displacements).
    """

    kind: Literal["topology", "surface"]
    corners: np.ndarray
    weights: np.ndarray
    valid: np.ndarray
    scale: np.ndarray


@dataclass
class ExpressionTransfer:
    """The linear map from driver coefficients to target coefficients (step 3–4 of the module docstring).

    Attributes:
        matrix: float64 [K, K′] (target × driver).
        driver_mean: float64 [K′] ᾱ′, the driver clip's mean expression.
        target_mean: float64 [K] ᾱ, the avatar's mean training expression.
        relative_residual: ‖U M − s ⊙ Ũ′‖ / ‖s ⊙ Ũ′‖ over the valid points: 0 when the target basis
            reproduces every driver motion exactly, near 1 when it cannot express them.
        correspondence: how the faces were matched.
    """

    matrix: np.ndarray
    driver_mean: np.ndarray
    target_mean: np.ndarray
    relative_residual: float
    correspondence: Correspondence

    def __call__(self, driver_expression: np.ndarray) -> np.ndarray:
        """float [..., K′] driver coefficients → float32 [..., K] target coefficients (re-centred)."""
        driver_expression = np.asarray(driver_expression, np.float64)
        if driver_expression.shape[-1] != self.matrix.shape[1]:
            raise ValueError(f"driver expression must end in K′ = {self.matrix.shape[1]} coefficients, "
                             f"got shape {driver_expression.shape}")
        return ((driver_expression - self.driver_mean) @ self.matrix.T + self.target_mean).astype(np.float32)

    def summary(self) -> dict[str, float | str | int]:
        """JSON-friendly description for provenance."""
        return {"correspondence": self.correspondence.kind, "relative_residual": round(self.relative_residual, 4),
                "points_used": int(self.correspondence.valid.sum()),
                "driver_coefficients": int(self.matrix.shape[1]), "target_coefficients": int(self.matrix.shape[0])}


def correspond(driver: FaceModel, target: FaceModel) -> Correspondence:
    """Match the target's face-model points to the driver's face surface (see the module docstring).

    Raises:
        RetargetError: the faces do not overlap (fewer than 10 % of the target points, or under 20,
            find a counterpart), or a face model is degenerate.
    """
    d_lo, d_hi = _bounds(driver.mean_shape, "driver")
    t_lo, t_hi = _bounds(target.mean_shape, "target")
    scale = (t_hi - t_lo) / (d_hi - d_lo)
    p = target.mean_shape.shape[0]
    if driver.mean_shape.shape == target.mean_shape.shape and np.array_equal(driver.triangles, target.triangles):
        index = np.arange(p)
        corners = np.stack([index, index, index], 1)
        weights = np.tile([1.0, 0.0, 0.0], (p, 1))
        return Correspondence("topology", corners, weights, np.ones(p, bool), scale)
    if len(driver.triangles) == 0:
        raise RetargetError("the driver's face model has no triangles: cannot find points on its surface")
    to_unit = lambda pts, lo, hi: 2 * (pts - lo) / (hi - lo) - 1  # noqa: E731  (bounding box → [−1, 1]^3)
    d_pts = to_unit(driver.mean_shape.astype(np.float64), d_lo, d_hi)
    t_pts = to_unit(target.mean_shape.astype(np.float64), t_lo, t_hi)
    tris = driver.triangles.astype(np.int64)
    # Match in the frontal projection: faces differ most in depth (noses, brows), and a face model is a
    # height field seen from the front, so (x, y) names a point of the face; ties go to the front-most.
    flat = d_pts * [1.0, 1.0, 0.0]
    k = min(_CANDIDATES, len(tris))
    _, cand = cKDTree(flat[tris].mean(1)[:, :2]).query(t_pts[:, :2], k=k)
    cand = cand.reshape(p, k)
    a, b, c = (flat[tris[cand, i]] for i in range(3))                                 # [P, k, 3]
    query = np.repeat((t_pts * [1.0, 1.0, 0.0])[:, None], k, 1)
    closest, bary = closest_point_on_triangles(query, a, b, c)
    dist = np.linalg.norm(closest - query, axis=-1)                                    # [P, k] in the plane
    depth = np.einsum("pkc,pkc->pk", bary, d_pts[tris[cand], 2])
    best = _front_most(dist, depth)
    rows = np.arange(p)
    valid = dist[rows, best] <= MAX_NORMALISED_DISTANCE
    if valid.sum() < max(20, 0.1 * p):
        raise RetargetError(f"the driver's and the avatar's face models barely overlap ({int(valid.sum())} of {p} "
                            "points matched): are both in head space (+Y up, +Z out of the face)?")
    return Correspondence("surface", tris[cand[rows, best]], bary[rows, best], valid, scale)


def expression_transfer(driver: FaceModel, target: FaceModel, driver_mean: np.ndarray, target_mean: np.ndarray,
                        ridge: float = 1e-6) -> ExpressionTransfer:
    """Fit the driver → target coefficient map (steps 1–4 of the module docstring).

    Args:
        driver, target: the two face models (head space, metres).
        driver_mean: float [K′] ᾱ′ of the driver clip.
        target_mean: float [K] ᾱ of the avatar (``DynTet.mean_expression``).
        ridge: Tikhonov weight relative to the mean eigenvalue of ``UᵀU`` (scale-free).
    """
    driver_mean = np.asarray(driver_mean, np.float64)
    target_mean = np.asarray(target_mean, np.float64)
    if driver_mean.shape != (driver.num_expression,) or target_mean.shape != (target.num_expression,):
        raise ValueError(f"mean expressions must be [K′] = [{driver.num_expression}] and [K] = "
                         f"[{target.num_expression}], got {driver_mean.shape} and {target_mean.shape}")
    corr = correspond(driver, target)
    carried = np.einsum("pc,kpcd->kpd", corr.weights, driver.expression_basis.astype(np.float64)[:, corr.corners])
    carried = carried * corr.scale                                                      # [K′, P, 3]
    design = target.expression_basis.astype(np.float64)[:, corr.valid].reshape(target.num_expression, -1).T
    wanted = carried[:, corr.valid].reshape(driver.num_expression, -1).T                # [3P, K′]
    gram = design.T @ design
    lam = ridge * max(np.trace(gram) / max(len(gram), 1), 1e-30)
    matrix = np.linalg.solve(gram + lam * np.eye(len(gram)), design.T @ wanted)          # [K, K′]
    norm = np.linalg.norm(wanted)
    residual = float(np.linalg.norm(design @ matrix - wanted) / norm) if norm > 0 else 0.0
    return ExpressionTransfer(matrix=matrix, driver_mean=driver_mean, target_mean=target_mean,
                              relative_residual=residual, correspondence=corr)


def _front_most(dist: np.ndarray, depth: np.ndarray, tolerance: float = 1e-9) -> np.ndarray:
    """Per row, the candidate nearest in the plane; among those containing the point, the largest z.
    dist, depth: float [P, k] → int64 [P]."""
    nearest = dist.min(1, keepdims=True)
    score = np.where(dist <= nearest + tolerance, depth, -np.inf)
    return score.argmax(1)


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Closest point to ``p`` on triangle ``abc``, elementwise over leading dimensions.

    The Voronoi-region walk of Ericson, *Real-Time Collision Detection* §5.1.5, vectorised.

    Args:
        p, a, b, c: float [..., 3].

    Returns:
        ``(point float [..., 3], barycentric float [..., 3])`` with ``point = Σ bary_i · corner_i``.
    """
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = _dot(ab, ap), _dot(ac, ap)
    bp = p - b
    d3, d4 = _dot(ab, bp), _dot(ac, bp)
    cp = p - c
    d5, d6 = _dot(ab, cp), _dot(ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v_in = np.where(denom != 0, vb / denom, 1 / 3)
        w_in = np.where(denom != 0, vc / denom, 1 / 3)
        t_ab = np.where(d1 - d3 != 0, d1 / (d1 - d3), 0)
        t_ac = np.where(d2 - d6 != 0, d2 / (d2 - d6), 0)
        t_bc = np.where((d4 - d3) + (d5 - d6) != 0, (d4 - d3) / ((d4 - d3) + (d5 - d6)), 0)
    bary = np.stack([1 - v_in - w_in, v_in, w_in], -1)
    regions = [  # Ericson checks A, B, AB, C, AC, BC in that order and the first match wins, so the
        # masks are applied in reverse order here and later ones overwrite earlier ones
        (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), _edge(t_bc, 1, 2),
        (vb <= 0) & (d2 >= 0) & (d6 <= 0), _edge(t_ac, 0, 2),
        (d6 >= 0) & (d5 <= d6), _corner(d6, 2),
        (vc <= 0) & (d1 >= 0) & (d3 <= 0), _edge(t_ab, 0, 1),
        (d3 >= 0) & (d4 <= d3), _corner(d3, 1),
        (d1 <= 0) & (d2 <= 0), _corner(d1, 0),
    ]
    for mask, weights in zip(regions[0::2], regions[1::2]):
        bary = np.where(mask[..., None], weights, bary)
    point = bary[..., :1] * a + bary[..., 1:2] * b + bary[..., 2:3] * c
    return point, bary


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("...d,...d->...", x, y)


def _edge(t: np.ndarray, i: int, j: int) -> np.ndarray:
    """Barycentrics of the point ``t`` of the way from corner i to corner j: float [..., 3]."""
    out = np.zeros(t.shape + (3,))
    out[..., i] = 1 - t
    out[..., j] += t
    return out


def _corner(like: np.ndarray, i: int) -> np.ndarray:
    out = np.zeros(like.shape + (3,))
    out[..., i] = 1
    return out


def _bounds(points: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = points.min(0).astype(np.float64), points.max(0).astype(np.float64)
    if np.any(hi - lo <= 1e-6) or not np.all(np.isfinite(points)):
        raise RetargetError(f"the {name}'s face model is degenerate (extent {hi - lo} m): cannot retarget")
    return lo, hi
