"""The multiresolution hash encoding as compiled CPU kernels (numba), same table as the PyTorch reference.

:class:`NumbaHashGrid` is a :class:`~dyntet.nn.hashgrid_torch.TorchHashGrid` whose forward and backward
passes run as ``@njit(nogil=True)`` loops instead of vectorised torch ops: per point and level the 2^d
corner rows are computed, gathered and blended in registers, so nothing of size [levels, 2^d, N] is
ever materialised (the reference's cost is mostly those temporaries). The layout, hashing and cell
convention are the reference's, so the two share parameters and checkpoints; the tests compare values
and gradients of both.

The kernels run level-major (one level's table slice stays in cache while all points visit it) and
are written for 3-D inputs, the appearance network's; anything else (other dimensions, CUDA tensors,
float64) falls back to the reference. Parallelism follows :mod:`dyntet.render.raster_parallel` (plain
threads, no ``prange``): tasks own disjoint sets of levels, and every level owns a disjoint slice of the
table, so the backward scatter needs no atomics; the position gradient goes to one buffer per task,
summed afterwards. Results are therefore deterministic for a given thread count.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from dyntet.nn.hashgrid_torch import PRIMES, TorchHashGrid
from dyntet.render.raster_parallel import num_workers, run_tasks

_PRIMES = np.array(PRIMES[:3], dtype=np.int64)


@njit(nogil=True, cache=True, inline="always")
def _corners(x, n, res, dense, offset, hash_mask, primes, rows, weights, frac):
    """Table rows and blend weights of point n's 8 cell corners at one level (x = 1 stays in the last cell).

    Corner c's bit 2 is its x offset, bit 1 its y offset, bit 0 its z offset; ``frac`` gets the position
    inside the cell.
    """
    scale = np.float32(res)
    last = scale - np.float32(1.0)
    pos = scale * x[n, 0]
    cell = min(np.floor(pos), last)
    c0, frac[0] = np.int64(cell), pos - cell
    pos = scale * x[n, 1]
    cell = min(np.floor(pos), last)
    c1, frac[1] = np.int64(cell), pos - cell
    pos = scale * x[n, 2]
    cell = min(np.floor(pos), last)
    c2, frac[2] = np.int64(cell), pos - cell
    side = res + 1
    for corner in range(8):
        b0, b1, b2 = (corner >> 2) & 1, (corner >> 1) & 1, corner & 1
        weights[corner] = ((frac[0] if b0 else np.float32(1.0) - frac[0])
                           * (frac[1] if b1 else np.float32(1.0) - frac[1])
                           * (frac[2] if b2 else np.float32(1.0) - frac[2]))
        if dense:
            rows[corner] = offset + (c0 + b0) + ((c1 + b1) + (c2 + b2) * side) * side
        else:
            rows[corner] = offset + ((((c0 + b0) * primes[0]) ^ ((c1 + b1) * primes[1])
                                      ^ ((c2 + b2) * primes[2])) & hash_mask)


@njit(nogil=True, cache=True)
def _forward_kernel(task, num_tasks, x, table, resolution, dense, offsets, hash_mask, primes, out):
    """Levels task, task + num_tasks, …: out[level] = the blended corner features (level-major, so two
    tasks never write the same cache line)."""
    rows = np.empty(8, np.int64)
    weights = np.empty(8, np.float32)
    frac = np.empty(3, np.float32)
    for level in range(task, out.shape[0], num_tasks):  # one level's table slice stays in cache
        for n in range(x.shape[0]):
            _corners(x, n, resolution[level], dense[level], offsets[level], hash_mask, primes, rows, weights, frac)
            for f in range(out.shape[2]):
                acc = np.float32(0.0)
                for corner in range(8):
                    acc += weights[corner] * table[rows[corner], f]
                out[level, n, f] = acc


@njit(nogil=True, cache=True)
def _backward_kernel(task, num_tasks, x, table, grad_out, resolution, dense, offsets, hash_mask, primes,
                     grad_table, grad_x_part, need_table, need_x):
    """Levels task, task + num_tasks, …: scatter into their own table slice; position gradient into
    this task's private ``grad_x_part[task]`` (summed by the caller)."""
    rows = np.empty(8, np.int64)
    weights = np.empty(8, np.float32)
    frac = np.empty(3, np.float32)
    n_features = grad_out.shape[2]
    for level in range(task, grad_out.shape[1], num_tasks):
        scale = np.float32(resolution[level])
        for n in range(x.shape[0]):
            _corners(x, n, resolution[level], dense[level], offsets[level], hash_mask, primes, rows, weights, frac)
            if need_table:
                for corner in range(8):
                    for f in range(n_features):
                        grad_table[rows[corner], f] += weights[corner] * grad_out[n, level, f]
            if need_x:
                g0 = g1 = g2 = np.float32(0.0)
                for corner in range(8):
                    dot = np.float32(0.0)
                    for f in range(n_features):
                        dot += table[rows[corner], f] * grad_out[n, level, f]
                    b0, b1, b2 = (corner >> 2) & 1, (corner >> 1) & 1, corner & 1
                    w0 = frac[0] if b0 else np.float32(1.0) - frac[0]
                    w1 = frac[1] if b1 else np.float32(1.0) - frac[1]
                    w2 = frac[2] if b2 else np.float32(1.0) - frac[2]
                    # ∂weight/∂frac_k = ±Π_{j≠k} w_j; ∂frac/∂x = N_l
                    g0 += (dot if b0 else -dot) * w1 * w2
                    g1 += (dot if b1 else -dot) * w0 * w2
                    g2 += (dot if b2 else -dot) * w0 * w1
                grad_x_part[task, n, 0] += g0 * scale
                grad_x_part[task, n, 1] += g1 * scale
                grad_x_part[task, n, 2] += g2 * scale


def _tasks(grid: "NumbaHashGrid") -> int:
    return max(1, min(num_workers(), len(grid.layout.resolutions)))


class _NumbaHashGridFunction(torch.autograd.Function):
    """x float32 [N, 3] in [0, 1]^3 (CPU), table float32 [E, F] → features float32 [N, L, F] (a view of
    a level-major array)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, table: torch.Tensor, grid: "NumbaHashGrid") -> torch.Tensor:
        x = x.detach().contiguous()
        table_c = table.detach().contiguous()
        out = torch.empty(len(grid.layout.resolutions), x.shape[0], table.shape[1], dtype=torch.float32)
        run_tasks(_forward_kernel, _tasks(grid), x.numpy(), table_c.numpy(), *grid.kernel_args(), out.numpy())
        ctx.grid = grid
        ctx.save_for_backward(x, table_c)
        return out.transpose(0, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        x, table = ctx.saved_tensors
        grid = ctx.grid
        need_x, need_table = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        tasks = _tasks(grid)
        grad_table = torch.zeros_like(table) if need_table else torch.empty(0, table.shape[1])
        grad_x_part = torch.zeros(tasks if need_x else 0, x.shape[0], 3)
        run_tasks(_backward_kernel, tasks, x.numpy(), table.numpy(), grad_out.to(torch.float32).contiguous().numpy(),
                  *grid.kernel_args(), grad_table.numpy(), grad_x_part.numpy(), need_table, need_x)
        return (grad_x_part.sum(dim=0) if need_x else None), (grad_table if need_table else None), None


class NumbaHashGrid(TorchHashGrid):
    """:class:`TorchHashGrid` with compiled CPU kernels; same parameters, same outputs (to rounding)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        layout = self.layout
        self._kernel_args = (np.array(layout.resolutions, dtype=np.int64), np.array(layout.dense, dtype=np.bool_),
                             np.array(layout.offsets, dtype=np.int64), np.int64((1 << self.log2_table_size) - 1),
                             _PRIMES)

    def kernel_args(self) -> tuple:
        """resolution, dense, offsets, hash mask, primes: the layout as the kernels take it."""
        return self._kernel_args

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.input_dim != 3 or x.device.type != "cpu" or self.table.device.type != "cpu"
                or self.table.dtype != torch.float32):
            return super().forward(x)
        x = x.to(torch.float32).clamp(0.0, 1.0)
        return _NumbaHashGridFunction.apply(x, self.table, self).reshape(x.shape[0], self.output_dim)
