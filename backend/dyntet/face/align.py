"""Rigid and similarity alignment of point sets (weighted, batched Kabsch/Umeyama; generalised Procrustes).

Why weighted: an expression moves the jaw and lips, not the forehead or the nose bridge. Aligning
on the points that move least removes head pose without dragging expression into it
(:func:`stable_point_weights`).
"""

from __future__ import annotations

import numpy as np


def similarity_align(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None,
                     scale: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best ``target ≈ s · R · source + t`` in weighted least squares (Umeyama 1991).

    Args:
        source: float [..., P, 3].
        target: float [..., P, 3] (broadcasts against ``source``).
        weights: float [P] ≥ 0, or None for equal weights.
        scale: fit ``s``; when False, ``s = 1`` (rigid).

    Returns:
        ``(R float64 [..., 3, 3] proper rotations, s float64 [...], t float64 [..., 3])``.
    """
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    source, target = np.broadcast_arrays(source, target)
    p = source.shape[-2]
    w = np.ones(p) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (p,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be [{p}] non-negative with a positive sum")
    w = w / w.sum()
    mu_s = np.einsum("p,...pd->...d", w, source)
    mu_t = np.einsum("p,...pd->...d", w, target)
    xs = source - mu_s[..., None, :]
    xt = target - mu_t[..., None, :]
    cov = np.einsum("p,...pi,...pj->...ij", w, xt, xs)
    u, sig, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.ones(sig.shape)
    fix[..., 2] = d
    rot = (u * fix[..., None, :]) @ vt
    if scale:
        var_s = np.einsum("p,...pd->...", w, xs * xs)
        s = (sig * fix).sum(-1) / np.maximum(var_s, 1e-30)
    else:
        s = np.ones(rot.shape[:-2])
    t = mu_t - s[..., None] * np.einsum("...ij,...j->...i", rot, mu_s)
    return rot, s, t


def apply_similarity(points: np.ndarray, rot: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``s · R · points + t`` for points [..., P, 3]."""
    return s[..., None, None] * np.einsum("...ij,...pj->...pi", rot, points) + t[..., None, :]


def invert_similarity(rot: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inverse of ``x ↦ s R x + t``: ``y ↦ (1/s) Rᵀ (y − t)``."""
    rt = np.swapaxes(rot, -1, -2)
    return rt, 1.0 / s, -np.einsum("...ij,...j->...i", rt, t) / s[..., None]


def generalized_procrustes(shapes: np.ndarray, weights: np.ndarray | None = None, scale: bool = True,
                           iterations: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Align every shape to their common mean (which is re-estimated each round).

    Args:
        shapes: float [T, P, 3].
        weights: float [P] alignment weights, or None.
        scale: allow a per-shape scale.

    Returns:
        ``(aligned float64 [T, P, 3], reference float64 [P, 3])``; the reference keeps the first
        shape's orientation and the mean size of the inputs.
    """
    shapes = np.asarray(shapes, np.float64)
    if shapes.ndim != 3 or shapes.shape[-1] != 3 or shapes.shape[0] < 1:
        raise ValueError(f"shapes must be [T, P, 3] with T ≥ 1, got {shapes.shape}")
    reference = shapes[0]
    aligned = shapes
    for _ in range(max(1, iterations)):
        rot, s, t = similarity_align(shapes, reference, weights, scale)
        aligned = apply_similarity(shapes, rot, s, t)
        mean = aligned.mean(0)
        # Keep the reference's frame: re-align the new mean to the old reference rigidly.
        r0, s0, t0 = similarity_align(mean, reference, weights, scale=False)
        reference = apply_similarity(mean, r0, s0, t0)
    return aligned, reference


def stable_point_weights(aligned: np.ndarray, fraction: float = 0.35) -> np.ndarray:
    """Weights that keep the ``fraction`` of points that move least over time (after alignment).

    Args:
        aligned: float [T, P, 3] shapes already roughly aligned.

    Returns:
        float64 [P] in {0, 1}.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    spread = np.asarray(aligned, np.float64).var(0).sum(-1)
    keep = max(3, int(round(fraction * spread.shape[0])))
    weights = np.zeros(spread.shape[0])
    weights[np.argsort(spread, kind="stable")[:keep]] = 1.0
    return weights
