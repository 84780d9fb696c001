"""Multiresolution hash encoding in pure PyTorch (the CPU path and the reference for tinycudann).

Müller et al., "Instant Neural Graphics Primitives with a Multiresolution Hash Encoding", SIGGRAPH 2022,
https://nvlabs.github.io/instant-ngp/. Level ``l`` divides the unit cube into ``N_l`` cells per side, with
``N_l = floor(N_min · b^l)`` and ``b`` chosen so the last level has ``N_max`` cells. A level whose
``(N_l + 1)^d`` grid vertices fit its table is stored densely (row-major, x fastest); finer levels hash
each vertex ``c`` into ``T`` entries with ``(c_0·π_0 xor c_1·π_1 xor …) mod T`` (π = 1, 2654435761,
805459861, 3674653429). Features of the ``2^d`` cell corners are blended with (bi/tri)linear weights.

How it is vectorised: all levels that share a storage kind (the dense prefix, the hashed rest) are done
at once, with the point axis innermost; per dimension we form the two corner parts of the table index
and combine them across dimensions by broadcasting (xor for hashed levels, sum for dense ones), so no
Python loop runs over points or levels. Corner features are then gathered and blended one corner at a
time (2^d steps), which avoids a [levels, 2^d, N, F] temporary. Everything runs inside one custom
autograd function: the forward pass keeps only corner indices and cell fractions; the backward pass
scatters ``weight · grad`` into the table (one 1-D ``scatter_add_`` per feature, much faster on CPU
than a 2-D ``index_add_``) and differentiates the blend weights analytically when the positions need a
gradient (the appearance network's inputs move with the geometry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

PRIMES = (1, 2654435761, 805459861, 3674653429)
"""Spatial-hash multipliers per input dimension (first is 1 for cache coherence, as in the paper)."""

MAX_INPUT_DIM = len(PRIMES)


@dataclass(frozen=True)
class HashGridLayout:
    """Where each level lives in the flat table.

    Attributes:
        resolutions: ``N_l``, cells per side of level l (grid vertices per side: ``N_l + 1``).
        table_sizes: entries of level l: ``(N_l + 1)^d`` when dense, else ``2^log2_table_size``.
        offsets: index of level l's first entry in the flat table.
        dense: whether level l is indexed densely (True) or hashed (False); dense levels form a prefix.
    """

    resolutions: tuple[int, ...]
    table_sizes: tuple[int, ...]
    offsets: tuple[int, ...]
    dense: tuple[bool, ...]

    @property
    def total_entries(self) -> int:
        return self.offsets[-1] + self.table_sizes[-1]

    @property
    def num_dense(self) -> int:
        return sum(self.dense)


def grid_layout(levels: int, log2_table_size: int, base_resolution: int, max_resolution: int,
                input_dim: int) -> HashGridLayout:
    """Per-level resolutions, storage kind and table offsets of a hash grid (see the module docstring)."""
    growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / max(levels - 1, 1))
    # The 1e-9 keeps floor(16 · b^15) at 2048 instead of 2047 when b^15 rounds down.
    resolutions = tuple(int(math.floor(base_resolution * growth ** level + 1e-9)) for level in range(levels))
    table = 1 << log2_table_size
    dense = tuple((res + 1) ** input_dim <= table for res in resolutions)
    sizes = tuple((res + 1) ** input_dim if is_dense else table for res, is_dense in zip(resolutions, dense))
    offsets = tuple(sum(sizes[:level]) for level in range(levels))
    if offsets[-1] + sizes[-1] >= 2 ** 31:
        raise ValueError(f"hash grid needs {offsets[-1] + sizes[-1]} table entries; at most 2^31 - 1 are "
                         "supported (lower levels or log2_table_size)")
    return HashGridLayout(resolutions, sizes, offsets, dense)


class _HashGridFunction(torch.autograd.Function):
    """x float [N, d] in [0, 1]^d, table float [E, F] → features float [N, L, F].

    The forward pass runs without autograd bookkeeping and keeps only, per level group, the corner
    indices (int32 [G, 2^d, N]) and the fractional cell positions (float [G, d, N]); the backward pass
    rebuilds the blend weights from those, scatters ``weight · grad`` into the table and, when the
    positions need it, differentiates the multilinear blend analytically.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, table: torch.Tensor, grid: "TorchHashGrid") -> torch.Tensor:
        n = x.shape[0]
        out = torch.empty(n, len(grid.layout.resolutions), table.shape[1], dtype=table.dtype, device=table.device)
        saved = []
        for levels, hashed in grid.groups():
            index, frac = grid.corners(x, levels, hashed)
            weights = _blend_weights(frac)                                           # [G, 2^d, N]
            values = None                                                            # [G, N, F]
            for c in range(index.shape[1]):  # one corner at a time: no [G, 2^d, N, F] temporary
                term = _gather_rows(table, index[:, c]) * weights[:, c, :, None]
                values = term if values is None else values.add_(term)
            out[:, levels] = values.transpose(0, 1)
            saved += [index, frac]
        ctx.grid = grid
        ctx.save_for_backward(table, *saved)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        grid = ctx.grid
        table, *saved = ctx.saved_tensors
        need_x, need_table = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_table = torch.zeros(table.shape[1], table.shape[0], dtype=table.dtype, device=table.device) \
            if need_table else None
        grad_x = None
        for (levels, _), index, frac in zip(grid.groups(), saved[0::2], saved[1::2]):
            grad = grad_out[:, levels].transpose(0, 1).contiguous()                  # [G, N, F]
            weights = _blend_weights(frac)                                           # [G, 2^d, N]
            if need_table:
                flat_index = index.reshape(-1).long()
                for f in range(table.shape[1]):
                    grad_table[f].scatter_add_(0, flat_index, (weights * grad[:, None, :, f]).reshape(-1))
            if need_x:
                per_corner = torch.stack([(_gather_rows(table, index[:, c]) * grad).sum(dim=-1)
                                          for c in range(index.shape[1])], dim=1)     # [G, 2^d, N]
                grad_frac = _blend_weights_backward(frac, per_corner)                 # [G, d, N]
                res = grid.resolution_tensor(levels)
                part = (grad_frac * res[:, None, None]).sum(dim=0).t()               # ∂frac/∂x = N_l
                grad_x = part if grad_x is None else grad_x + part
        return grad_x, (grad_table.t() if need_table else None), None


def _blend_weights(frac: torch.Tensor) -> torch.Tensor:
    """Multilinear corner weights: frac float [G, d, N] → float [G, 2^d, N] (dim 0's corner bit is the MSB)."""
    g, d, n = frac.shape
    weights = None
    for k in range(d):
        shape = [g] + [1] * d + [n]
        shape[1 + k] = 2
        wk = torch.stack([1.0 - frac[:, k], frac[:, k]], dim=1).reshape(shape)
        weights = wk if weights is None else weights * wk
    return weights.reshape(g, 2 ** d, n)


def _blend_weights_backward(frac: torch.Tensor, grad_weights: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. frac [G, d, N] of Σ_c grad_weights[:, c] · weight_c(frac)."""
    g, d, n = frac.shape
    grad = grad_weights.reshape(g, *([2] * d), n)
    out = []
    for k in range(d):
        diff = grad.select(1 + k, 1) - grad.select(1 + k, 0)                         # ∂w/∂frac_k = ±Π_{j≠k} w_j
        for j in reversed(range(d)):
            if j == k:
                continue
            axis = 1 + j - (1 if j > k else 0)
            shape = [g] + [1] * (d - 1) + [n]
            shape[axis] = 2
            wj = torch.stack([1.0 - frac[:, j], frac[:, j]], dim=1).reshape(shape)
            diff = (diff * wj).sum(dim=axis, keepdim=True)
        out.append(diff.reshape(g, n))
    return torch.stack(out, dim=1)


def _gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table float [E, F], index int [...] → float [..., F]; 8-byte rows are moved as one element."""
    flat = index.reshape(-1)
    if table.dtype == torch.float32 and table.shape[1] == 2 and table.is_contiguous():
        rows = table.view(torch.float64).reshape(-1).index_select(0, flat).view(torch.float32)
    else:
        rows = table.index_select(0, flat)
    return rows.reshape(*index.shape, table.shape[1])


class TorchHashGrid(nn.Module):
    """Pure-PyTorch multiresolution hash encoding; see the module docstring for the layout.

    Args:
        levels, features_per_level, log2_table_size, base_resolution, max_resolution, input_dim: as in
            :class:`dyntet.nn.encodings.HashGridConfig` (validated there).

    Shapes: ``forward(x float [N, d] in [0, 1]^d) → float [N, levels · features_per_level]``, level-major
    (level 0's features first). Inputs outside the unit cube are clamped onto it.
    Memory: the backward pass keeps ``levels · 2^d`` int32 corner indices and ``levels · d`` float cell
    fractions per point (0.7 KB per 3-D point at 16 levels).
    """

    def __init__(self, levels: int, features_per_level: int, log2_table_size: int, base_resolution: int,
                 max_resolution: int, input_dim: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.features_per_level = features_per_level
        self.log2_table_size = log2_table_size
        self.layout = grid_layout(levels, log2_table_size, base_resolution, max_resolution, input_dim)
        self.table = nn.Parameter(torch.empty(self.layout.total_entries, features_per_level).uniform_(-1e-4, 1e-4))
        layout = self.layout
        res = torch.tensor(layout.resolutions, dtype=torch.float32)
        self.register_buffer("_resolution", res, persistent=False)
        self.register_buffer("_offset", torch.tensor(layout.offsets, dtype=torch.int32), persistent=False)
        # Dense strides per level and dimension: (N_l + 1)^k, k = 0..d-1 (x fastest).
        verts = torch.tensor(layout.resolutions, dtype=torch.int64) + 1
        strides = torch.stack([verts ** k for k in range(input_dim)], dim=-1)
        self.register_buffer("_stride", strides, persistent=False)
        self.register_buffer("_prime", torch.tensor(PRIMES[:input_dim], dtype=torch.int64), persistent=False)

    @property
    def output_dim(self) -> int:
        return len(self.layout.resolutions) * self.features_per_level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.table.dtype).clamp(0.0, 1.0)
        return _HashGridFunction.apply(x, self.table, self).reshape(x.shape[0], self.output_dim)

    def groups(self) -> list[tuple[slice, bool]]:
        """Level ranges sharing a storage kind: (the dense prefix, False), (the hashed rest, True)."""
        n_dense, n_levels = self.layout.num_dense, len(self.layout.resolutions)
        out = [(slice(0, n_dense), False)] if n_dense else []
        return out + ([(slice(n_dense, n_levels), True)] if n_dense < n_levels else [])

    def resolution_tensor(self, levels: slice) -> torch.Tensor:
        return self._resolution[levels].to(self.table.dtype)

    @torch.no_grad()
    def corners(self, x: torch.Tensor, levels: slice, hashed: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Table rows of the 2^d cell corners and the position inside the cell, for levels of one kind.

        Args:
            x: float [N, d] in [0, 1]^d.

        Returns:
            index int32 [G, 2^d, N] (flat-table rows; corner c's bit for dim 0 is its most significant)
            and frac float [G, d, N] in [0, 1]. Arrays keep the point axis innermost so every
            elementwise op runs on contiguous rows.
        """
        d = self.input_dim
        res = self.resolution_tensor(levels)                                      # [G]
        pos = res[:, None, None] * x.t()[None]                                    # [G, d, N]
        cell = torch.minimum(pos.floor(), (res - 1)[:, None, None])               # keep x = 1 in the last cell
        frac = pos - cell
        cell = cell.to(torch.int64)
        if hashed:
            mask = (1 << self.log2_table_size) - 1
            product = cell * self._prime[None, :, None]                          # [G, d, N]; (c + 1)·π = c·π + π
            low = (product & mask).to(torch.int32)
            high = ((product + self._prime[None, :, None]) & mask).to(torch.int32)
        else:
            stride = self._stride[levels][:, :, None]                             # [G, d, 1]
            low = (cell * stride).to(torch.int32)
            high = low + stride.to(torch.int32)
        g, n = low.shape[0], low.shape[2]
        index = None
        for k in range(d):  # combine per-dimension corner parts by broadcasting
            shape = [g] + [1] * d + [n]
            shape[1 + k] = 2
            part = torch.stack([low[:, k], high[:, k]], dim=1).reshape(shape)
            index = part if index is None else ((index ^ part) if hashed else (index + part))
        index = index.reshape(g, 2 ** d, n) + self._offset[levels][:, None, None]
        return index, frac
