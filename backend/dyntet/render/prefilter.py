"""GGX prefiltering of a cube-map light for split-sum shading: the maps and the linear operator behind them.

Each specular level is the radiance convolved with a GGX lobe (normal = view = reflection direction,
Karis 2013). Every texel averages a fixed, deterministic set of GGX-importance-sampled directions around
its own direction, weighted by n·l; each sample reads a box-filtered mip of the radiance whose texel
matches the sample's share of the lobe (filtered importance sampling, Colbert & Křivánek, GPU Gems 3
ch. 20), so a few dozen samples give a smooth result. Measured against a brute-force convolution over
all texels: within 3 % of the peak radiance and 1 % on average.

The result is linear in the radiance with weights fixed by the :class:`PrefilterPlan`, so there are two
ways to compute it, giving the same maps: :func:`prefilter_direct` samples the cube maps on every call
(no set-up, slow on a CPU), :func:`prefilter_operator` gathers every tap once into a sparse matrix so
that each later prefilter is one sparse product (fast, memory grows with R²).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from dyntet.render import ggx
from dyntet.render.texture import cube_taps, cube_to_dirs, sample_cube

MAX_SAMPLES = 1024
"""Cap on GGX samples per texel; 1024 keeps a roughness-1 level within ~1 % of an exact convolution."""


@dataclass(frozen=True)
class PrefilterPlan:
    """What to prefilter: the radiance's base resolution R (a power of two; its box-filtered mips R/2, …, 1
    are the sources) and the levels to make, each ``(resolution, roughness, samples)``."""

    base_resolution: int
    levels: tuple[tuple[int, float, int], ...]

    @property
    def num_sources(self) -> int:
        return self.base_resolution.bit_length()


def prefilter_direct(pyramid: list[torch.Tensor], plan: PrefilterPlan) -> list[torch.Tensor]:
    """Specular levels by sampling: pyramid = radiance float [6, R, R, 3] and its box mips down to 1 →
    list of float [6, r_k, r_k, 3], differentiable w.r.t. the pyramid."""
    return [_prefilter_ggx(pyramid, size, roughness, samples) for size, roughness, samples in plan.levels]


@functools.lru_cache(maxsize=4)
def prefilter_operator(plan: PrefilterPlan, device: torch.device, dtype: torch.dtype) -> SparseOperator:
    """The sparse matrix of a plan (built on first use, a few seconds on a CPU at R = 64; cached per plan,
    device and dtype for the process)."""
    return _specular_operator(plan, device, dtype)


_LOD_BIAS = 0.5
"""Extra source-mip levels per sample: 0 tiles footprints exactly, Karis uses 1 (softer)."""
_PREFILTER_CHUNK = 1 << 21
"""Directions evaluated at once while prefiltering (bounds temporary memory to a few hundred MB)."""
_DENSE_TAPS = 1 << 24
"""Largest level-texels × mip-texels block whose taps are summed in a dense buffer (64 MB of float32)."""


def _prefilter_ggx(sources: list[torch.Tensor], resolution: int, roughness: float, samples: int) -> torch.Tensor:
    """Radiance convolved with the GGX lobe of ``roughness`` (α = roughness²) on a [6, res, res, 3] cube.

    ``sources[j]`` is the radiance box-filtered to ``R / 2^j``. With normal = view = texel direction, the
    estimator is Σ L(l_i)·(n·l_i) / Σ (n·l_i) over GGX half-vector samples (Karis 2013); each sample reads
    the source mip whose texel solid angle matches 1/(S · pdf(l_i)), biased by ``_LOD_BIAS`` levels so the
    footprints of neighbouring samples overlap (no dotted pattern from the fixed sample set). Samples that
    read the same pair of mips are evaluated together, in chunks of bounded memory.
    """
    normals = cube_to_dirs(resolution, device=sources[0].device, dtype=sources[0].dtype)
    tangent, bitangent = _orthonormal_basis(normals)
    local, weights, lods = (t.to(normals) for t in _ggx_samples(roughness, samples, sources[0].shape[1],
                                                                 len(sources)))
    low = lods.floor().long()
    frac = lods - low
    out = torch.zeros_like(normals)
    chunk = max(1, _PREFILTER_CHUNK // normals[..., 0].numel())
    for level in low.unique().tolist():
        picked = (low == level).nonzero(as_tuple=True)[0]
        for start in range(0, len(picked), chunk):
            rows = picked[start:start + chunk]
            lx, ly, lz = (local[rows, k].reshape(-1, 1, 1, 1, 1) for k in range(3))
            dirs = tangent * lx + bitangent * ly + normals * lz                     # [s, 6, r, r, 3]
            value = sample_cube(sources[level], dirs)
            if level + 1 < len(sources):
                value = torch.lerp(value, sample_cube(sources[level + 1], dirs), frac[rows].reshape(-1, 1, 1, 1, 1))
            out = out + (value * weights[rows].reshape(-1, 1, 1, 1, 1)).sum(dim=0)
    return out


def _specular_operator(plan: PrefilterPlan, device: torch.device, dtype: torch.dtype) -> SparseOperator:
    """The whole specular prefilter as one sparse matrix from the radiance mip pyramid to all levels.

    Prefiltering is linear in the radiance, with weights that depend only on the configuration, so the
    taps :func:`_prefilter_ggx` reads (sample direction → two source mips → four bilinear texels each)
    are gathered once, duplicates summed, and every later build is a sparse matrix product. Rows: the
    specular levels' texels, level after level (face, row, column); columns: the pyramid's texels, mip
    after mip. Same samples and weights as the direct path, so both give the same maps.
    """
    pyramid = [plan.base_resolution >> k for k in range(plan.num_sources)]
    col_offsets = np.cumsum([0] + [6 * r * r for r in pyramid]).tolist()
    row_offset, triplets = 0, []
    for size, roughness, samples in plan.levels:
        normals = cube_to_dirs(size, device=device, dtype=dtype)
        tangent, bitangent = _orthonormal_basis(normals)
        local, weights, lods = (t.to(normals) for t in _ggx_samples(roughness, samples, plan.base_resolution,
                                                                     len(pyramid)))
        low = lods.floor().long()
        frac = lods - low
        n_rows = 6 * size * size
        rows = torch.arange(n_rows, device=device).reshape(1, 6, size, size, 1)
        level_triplets = []
        for mip in range(len(pyramid)):
            share = torch.where(low == mip, 1 - frac, torch.where(low + 1 == mip, frac, torch.zeros_like(frac)))
            pick = (share > 0).nonzero(as_tuple=True)[0]
            if len(pick) == 0:
                continue
            taps = _TapAccumulator(n_rows, 6 * pyramid[mip] ** 2, device, dtype)
            for chunk in pick.split(max(1, _PREFILTER_CHUNK // n_rows)):
                lx, ly, lz = (local[chunk, k].reshape(-1, 1, 1, 1, 1) for k in range(3))
                index, tap = cube_taps(pyramid[mip], tangent * lx + bitangent * ly + normals * lz)
                value = tap * (weights[chunk] * share[chunk]).reshape(-1, 1, 1, 1, 1)   # [s, 6, r, r, 4]
                taps.add(rows.expand_as(index).reshape(-1), index.reshape(-1), value.reshape(-1))
            r, c, v = taps.result()
            level_triplets.append((r + row_offset, c + col_offsets[mip], v))
        triplets.append(_sum_duplicates(level_triplets))       # sorts the level's entries by row, column
        row_offset += n_rows
    rows_, cols, values = (torch.cat(parts) for parts in zip(*triplets))
    sizes = tuple(size for size, _, _ in plan.levels)
    return SparseOperator(rows_, cols, values, (row_offset, col_offsets[-1]), sizes)


class _TapAccumulator:
    """Sums (row, col, value) taps of one rows × cols block: in a dense buffer when the block is small
    (no sorting; the common case for coarse mips, which receive most taps), else as sorted triplets."""

    def __init__(self, n_rows: int, n_cols: int, device: torch.device, dtype: torch.dtype) -> None:
        self.n_cols = n_cols
        self.dense = torch.zeros(n_rows * n_cols, dtype=dtype, device=device) \
            if n_rows * n_cols <= _DENSE_TAPS else None
        self.triplets: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor) -> None:
        if self.dense is not None:
            self.dense.index_add_(0, rows * self.n_cols + cols, values)
            return
        self.triplets.append((rows, cols, values))
        if sum(t[0].numel() for t in self.triplets) > 8 * _PREFILTER_CHUNK:
            self.triplets = [_sum_duplicates(self.triplets)]           # bound memory

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.dense is None:
            return _sum_duplicates(self.triplets)
        key = self.dense.nonzero(as_tuple=True)[0]
        return key // self.n_cols, key % self.n_cols, self.dense[key]


def _sum_duplicates(triplets: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Concatenate (rows, cols, values) triplets and sum the values of repeated (row, col) pairs; the
    result is sorted by row, then column."""
    rows = torch.cat([t[0] for t in triplets])
    cols = torch.cat([t[1] for t in triplets])
    values = torch.cat([t[2] for t in triplets])
    width = int(cols.max()) + 1
    key, inverse = torch.unique(rows * width + cols, return_inverse=True)
    summed = torch.zeros(key.shape, dtype=values.dtype, device=values.device).index_add_(0, inverse, values)
    return key // width, key % width, summed


class SparseOperator:
    """The prefilter as a fixed sparse matrix A [M, N], applied with autograd (the backward pass uses Aᵀ).

    Built from (rows, cols, values) sorted by row then column without duplicates; kept in CSR form
    together with its transpose, because CSR products are the fast sparse kernels on CPU and GPU.
    """

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int],
                 sizes: tuple[int, ...]) -> None:
        self.matrix = _csr(rows, cols, values, shape)
        order = torch.sort(cols, stable=True).indices          # rows stay sorted within each column
        self.transpose = _csr(cols[order], rows[order], values[order], shape[::-1])
        self.nnz = int(values.numel())
        self.sizes = sizes

    def apply(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        """Radiance pyramid (float [6, R, R, 3], then its box mips down to 1) → specular levels, as
        :func:`prefilter_direct` returns them."""
        flat = _SparseMatmul.apply(torch.cat([p.reshape(-1, p.shape[-1]) for p in pyramid]), self)
        parts = flat.split([6 * s * s for s in self.sizes])
        return [part.reshape(6, s, s, -1) for part, s in zip(parts, self.sizes)]


def _csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """CSR matrix from row-sorted COO triplets."""
    counts = torch.bincount(rows, minlength=shape[0])
    crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    with warnings.catch_warnings():  # CSR support is labelled beta; we use only construction and matmul
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow.int(), cols.int(), values, shape, check_invariants=False)


class _SparseMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, op: SparseOperator) -> torch.Tensor:
        ctx.op = op
        return op.matrix @ x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        return ctx.op.transpose @ grad.contiguous(), None


def _ggx_samples(roughness: float, samples: int, base_resolution: int, num_sources: int):
    """A deterministic GGX sample set for normal = view = +Z: (directions [S', 3], weights [S'], lods [S'])."""
    alpha2 = roughness ** 4
    h = ggx.sample_half_vectors(alpha2, samples)
    cos_h = h[:, 2]
    light = 2 * cos_h[:, None] * h - np.array([0.0, 0.0, 1.0])                 # reflect +Z about h
    n_dot_l = light[:, 2]
    keep = n_dot_l > 1e-6
    pdf = ggx.distribution(cos_h, alpha2) / 4                                    # pdf of l when n = v
    texel = 4 * np.pi / (6 * base_resolution ** 2)
    lods = np.clip(0.5 * np.log2(1 / (samples * pdf * texel)) + _LOD_BIAS, 0, num_sources - 1)
    weights = n_dot_l[keep] / n_dot_l[keep].sum()
    return torch.from_numpy(light[keep]), torch.from_numpy(weights), torch.from_numpy(lods[keep])


def _orthonormal_basis(n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tangent and bitangent for unit normals float [..., 3]; continuous except where n_z changes sign
    (Duff et al., "Building an Orthonormal Basis, Revisited", JCGT 2017)."""
    x, y, z = n.unbind(-1)
    sign = torch.where(z >= 0, 1.0, -1.0).to(n.dtype)
    a = -1.0 / (sign + z)
    b = x * y * a
    tangent = torch.stack([1 + sign * x * x * a, sign * b, -sign * x], dim=-1)
    bitangent = torch.stack([b, sign + y * y * a, -y], dim=-1)
    return tangent, bitangent
