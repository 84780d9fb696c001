"""PCA blend-shape rig: compress T per-frame meshes into a mean, K blend shapes and T×K weights.

A talking head moves in a low-dimensional space, so a few dozen principal components reproduce a long
sequence to well under a millimetre while a per-frame rig stores one shape per frame. The rig is what
game engines want (K morph targets with animated weights). Errors are per-vertex Euclidean distances;
the RMS error of rank k follows exactly from the discarded singular values, so ``tolerance_mm`` picks the
smallest K meeting it without trying ranks one by one.

Two factorisations of the centred data X [T, 3V]: an exact eigen-decomposition of the T×T Gram matrix
X Xᵀ (float64) for up to ``exact_max_frames`` frames, else a randomised range finder (Halko, Martinsson
& Tropp 2011) with power iterations, which reads the frames in chunks and never holds X in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from dyntet.formats.sequence import BlendShapeRig
from dyntet.progress import Progress, ProgressFn

_CHUNK_FRAMES = 64
_RANK_EPS = 1e-12
"""Components carrying less than this fraction of the variance count as numerical noise."""


@dataclass
class PcaConfig:
    """How many blend shapes to keep and how to compute them."""

    num_targets: int | None = None
    """K, the number of blend shapes; None picks the smallest K meeting ``tolerance_mm``."""
    tolerance_mm: float = 0.5
    """Largest RMS vertex error in millimetres allowed when picking K (``num_targets`` None)."""
    max_error_mm: float | None = 1.0
    """Largest per-vertex error in millimetres allowed when picking K (None: RMS only). RMS over a
    whole head is dominated by the many still vertices; the maximum is what shows on the lips."""
    max_targets: int = 128
    """Upper bound on K when picking by tolerance (and the sketch size of the randomised method)."""
    method: Literal["auto", "exact", "randomized"] = "auto"
    """``exact`` Gram eigen-decomposition, ``randomized`` sketch, or ``auto`` (exact up to
    ``exact_max_frames`` frames)."""
    exact_max_frames: int = 4096
    """Frame count above which ``auto`` switches to the randomised method."""
    power_iterations: int = 3
    """Power iterations of the randomised method (more = sharper spectrum, one data pass each)."""
    seed: int = 0
    """Seed of the randomised sketch."""

    def __post_init__(self) -> None:
        if self.num_targets is not None and self.num_targets < 1:
            raise ValueError(f"num_targets must be >= 1 (or None to pick by tolerance), got {self.num_targets}")
        if not self.tolerance_mm > 0:
            raise ValueError(f"tolerance_mm must be > 0, got {self.tolerance_mm}")
        if self.max_error_mm is not None and not self.max_error_mm > 0:
            raise ValueError(f"max_error_mm must be > 0 or None, got {self.max_error_mm}")
        if self.max_targets < 1:
            raise ValueError(f"max_targets must be >= 1, got {self.max_targets}")
        if self.method not in ("auto", "exact", "randomized"):
            raise ValueError(f"method must be 'auto', 'exact' or 'randomized', got {self.method!r}")


@dataclass
class PcaReport:
    """Accuracy of a fitted rig over every frame and vertex (millimetres)."""

    num_targets: int
    """K kept."""
    rms_mm: float
    """Root-mean-square per-vertex distance between rig and original."""
    max_mm: float
    """Largest per-vertex distance in any frame."""
    explained: float
    """Fraction of the variance (about the mean) the K shapes keep, in [0, 1]."""


def fit_pca_rig(vertices: np.ndarray, config: PcaConfig | None = None,
                progress: ProgressFn | None = None) -> tuple[BlendShapeRig, PcaReport]:
    """Fit a PCA blend-shape rig to per-frame vertices and measure its error.

    Args:
        vertices: float32 [T, V, 3] (a memory map is fine: frames are read in chunks), metres.
        config: K or tolerance, and the method.
        progress: called with ``Progress(stage="pca", ...)`` after each pass over the data.

    Returns:
        The rig — mean float32 [V, 3], targets float32 [K, V, 3], weights float32 [T, K], normalised so
        every weight track spans exactly [0, 1] (see :func:`normalize_weights`) — and its
        :class:`PcaReport`. K may be below the request when the data has lower rank.
    """
    cfg = config or PcaConfig()
    if not isinstance(vertices, np.ndarray) or vertices.ndim != 3 or vertices.shape[2] != 3:
        raise ValueError(f"vertices must be a float array [T, V, 3], got {getattr(vertices, 'shape', vertices)}")
    if vertices.shape[0] < 1 or vertices.shape[1] < 1:
        raise ValueError(f"vertices is empty: shape {vertices.shape}")
    num_frames = vertices.shape[0]
    flat = vertices.reshape(num_frames, -1)
    mean = _chunked_mean(flat)
    total_energy = sum(float(((_centred(flat, mean, s) ** 2).sum())) for s in _chunks(num_frames))
    if not np.isfinite(total_energy):
        raise ValueError("vertices contain NaN or infinite values")
    method = cfg.method
    if method == "auto":
        method = "exact" if num_frames <= cfg.exact_max_frames else "randomized"
    limit = cfg.num_targets if cfg.num_targets is not None else cfg.max_targets
    limit = min(limit, num_frames, flat.shape[1])
    if method == "exact":
        weights, energies = _exact_components(flat, mean)
    else:
        weights, energies = _randomized_components(flat, mean, limit, cfg, progress)
    _report(progress, 1, 2, "factorised")

    num_vertices = vertices.shape[1]
    rank = max(1, int((energies > _RANK_EPS * total_energy).sum()))
    limit = min(limit, rank)
    weights = weights[:, :limit]                               # float64 [T, limit], orthonormal columns
    targets = np.zeros((limit, flat.shape[1]))
    for s in _chunks(num_frames):                              # targets = Wᵀ X: the data projected
        targets += weights[s].T @ _centred(flat, mean, s)
    if cfg.num_targets is not None:
        k = limit
    else:
        residual = np.maximum(total_energy - np.cumsum(energies[:limit]), 0.0)
        rms_mm = np.sqrt(residual / (num_frames * num_vertices)) * 1e3
        meets = np.flatnonzero(rms_mm <= cfg.tolerance_mm)
        k = int(meets[0]) + 1 if meets.size else limit
        if cfg.max_error_mm is not None:
            k = _bisect_max_error(flat, mean, weights, targets, k, limit, cfg.max_error_mm)
    weights, targets = weights[:, :k], targets[:k]
    rig = normalize_weights(BlendShapeRig(mean=mean.reshape(-1, 3), targets=targets.reshape(k, -1, 3),
                                          weights=weights))
    report = measure_rig(vertices, rig, total_energy=total_energy)
    _report(progress, 2, 2, f"K={k}, RMS {report.rms_mm:.3f} mm, max {report.max_mm:.3f} mm")
    return rig, report


def _bisect_max_error(flat: np.ndarray, mean: np.ndarray, weights: np.ndarray, targets: np.ndarray,
                      low: int, high: int, max_error_mm: float) -> int:
    """Smallest K in [low, high] (by bisection; the error falls almost monotonically in K) whose largest
    per-vertex error is within ``max_error_mm``; ``high`` when none is."""

    def max_mm(k: int) -> float:
        worst = 0.0
        for s in _chunks(flat.shape[0]):
            residual = (_centred(flat, mean, s) - weights[s, :k] @ targets[:k]).reshape(-1, 3)
            worst = max(worst, float((residual ** 2).sum(-1).max()))
        return np.sqrt(worst) * 1e3

    if max_mm(low) <= max_error_mm:
        return low
    while high - low > 1:  # invariant: low fails
        mid = (low + high) // 2
        if max_mm(mid) <= max_error_mm:
            high = mid
        else:
            low = mid
    return high


def normalize_weights(rig: BlendShapeRig) -> BlendShapeRig:
    """The same rig with every weight track spanning [0, 1]; returns float32 arrays.

    Blender's shape-key sliders and several engines expect weights in [0, 1]. For a track with range
    [lo, hi] the target is scaled by (hi − lo) and lo · target moves into the mean, so
    ``mean + Σ w·target`` is unchanged. Constant tracks fold into the mean and keep a zero weight.
    """
    w = np.asarray(rig.weights, dtype=np.float64)
    targets = np.asarray(rig.targets, dtype=np.float64)
    lo, hi = w.min(axis=0), w.max(axis=0)
    span = hi - lo
    flat_track = span <= 1e-12 * np.maximum(np.abs(hi), 1.0)
    scale = np.where(flat_track, 1.0, span)
    mean = np.asarray(rig.mean, dtype=np.float64) + np.tensordot(lo, targets, axes=1)
    new_w = np.where(flat_track, 0.0, (w - lo) / scale)
    new_t = targets * np.where(flat_track, 0.0, scale)[:, None, None]
    return BlendShapeRig(mean=mean.astype(np.float32), targets=new_t.astype(np.float32),
                         weights=new_w.astype(np.float32))


def measure_rig(vertices: np.ndarray, rig: BlendShapeRig, total_energy: float | None = None) -> PcaReport:
    """RMS and max per-vertex error (mm) of ``rig`` against ``vertices`` float32 [T, V, 3]."""
    num_frames, num_vertices = vertices.shape[:2]
    if rig.weights.shape[0] != num_frames or rig.mean.shape[0] != num_vertices:
        raise ValueError(f"rig is for T={rig.weights.shape[0]}, V={rig.mean.shape[0]}; "
                         f"vertices have T={num_frames}, V={num_vertices}")
    sq_sum, max_sq, centred = 0.0, 0.0, 0.0
    mean_all = None if total_energy is not None else _chunked_mean(vertices.reshape(num_frames, -1))
    for s in _chunks(num_frames):
        original = np.asarray(vertices[s], dtype=np.float64)
        recon = rig.reconstruct(s).astype(np.float64)
        d2 = ((recon - original) ** 2).sum(-1)
        sq_sum += float(d2.sum())
        max_sq = max(max_sq, float(d2.max()))
        if mean_all is not None:
            centred += float(((original.reshape(len(original), -1) - mean_all) ** 2).sum())
    energy = total_energy if total_energy is not None else centred
    count = num_frames * num_vertices
    return PcaReport(num_targets=rig.num_targets, rms_mm=float(np.sqrt(sq_sum / count) * 1e3),
                     max_mm=float(np.sqrt(max_sq) * 1e3),
                     explained=float(1.0 - sq_sum / energy) if energy > 0 else 1.0)


def _chunks(n: int) -> list[slice]:
    return [slice(i, min(i + _CHUNK_FRAMES, n)) for i in range(0, n, _CHUNK_FRAMES)]


def _chunked_mean(flat: np.ndarray) -> np.ndarray:
    total = np.zeros(flat.shape[1])
    for s in _chunks(flat.shape[0]):
        total += np.asarray(flat[s], dtype=np.float64).sum(0)
    return total / flat.shape[0]


def _centred(flat: np.ndarray, mean: np.ndarray, s: slice) -> np.ndarray:
    return np.asarray(flat[s], dtype=np.float64) - mean


def _exact_components(flat: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of the Gram matrix X Xᵀ: orthonormal weights float64 [T, T], energies [T]."""
    n = flat.shape[0]
    gram = np.zeros((n, n))
    chunks = _chunks(n)
    for i, a in enumerate(chunks):
        xa = _centred(flat, mean, a)
        for b in chunks[i:]:
            block = xa @ _centred(flat, mean, b).T
            gram[a, b] = block
            gram[b, a] = block.T
    energies, vectors = np.linalg.eigh(gram)
    order = np.argsort(energies)[::-1]
    return vectors[:, order], np.maximum(energies[order], 0.0)


def _randomized_components(flat: np.ndarray, mean: np.ndarray, k: int, cfg: PcaConfig,
                           progress: ProgressFn | None) -> tuple[np.ndarray, np.ndarray]:
    """Top left singular vectors of X (float64 [T, l]) and their energies σ² by a randomised sketch."""
    n, d = flat.shape
    sketch = min(n, d, max(k, cfg.max_targets) + 10)
    rng = np.random.default_rng(cfg.seed)
    omega = rng.standard_normal((d, sketch))
    y = np.concatenate([_centred(flat, mean, s) @ omega for s in _chunks(n)])          # [T, l]
    for it in range(cfg.power_iterations):
        q, _ = np.linalg.qr(y)
        z = np.zeros((d, sketch))
        for s in _chunks(n):
            z += _centred(flat, mean, s).T @ q[s]                                        # Xᵀ Q  [3V, l]
        z, _ = np.linalg.qr(z)
        y = np.concatenate([_centred(flat, mean, s) @ z for s in _chunks(n)])
        _report(progress, 0, 2, f"power iteration {it + 1}/{cfg.power_iterations}")
    q, _ = np.linalg.qr(y)                                                               # range of X, [T, l]
    small = np.zeros((sketch, d))
    for s in _chunks(n):
        small += q[s].T @ _centred(flat, mean, s)                                        # B = Qᵀ X  [l, 3V]
    u_small, energies, _ = np.linalg.svd(small @ small.T)                                # B Bᵀ = U Σ² Uᵀ
    return q @ u_small, energies


def _report(progress: ProgressFn | None, step: int, total: int, message: str) -> None:
    if progress is not None:
        progress(Progress(stage="pca", step=step, total=total, message=message))
