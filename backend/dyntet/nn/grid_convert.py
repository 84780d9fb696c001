"""Moving a hash grid's weights between our table layout (torch, numba) and tinycudann's.

Both store level after level, each level ``[entries, F]`` row-major; they differ in the coarse, dense
levels: ours has ``N_l + 1`` vertices per side at ``x · N_l`` (``N_l = floor(N_min · b^l)``), tinycudann
``ceil(s_l) + 1`` at ``x · s_l + 0.5`` (``s_l = N_min · b^l − 1``) and pads each level to a multiple of 8
entries. Dense levels are therefore resampled (multilinearly, exact for fields linear within a level);
hashed levels use the same hash and table size and are copied, so their cells shift by under one cell.
The converted grid is close, not identical: resume training a few hundred steps after converting.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from dyntet.nn.hashgrid_torch import PRIMES, grid_layout


class GridConversionError(ValueError):
    """The weights do not fit the configured grid (different levels, features or table size)."""


@dataclass(frozen=True)
class TcnnLevel:
    scale: float
    """Cells per side in tinycudann's convention (``s_l``)."""
    resolution: int
    """Grid vertices per side (``ceil(s_l) + 1``)."""
    entries: int
    """Entries the level takes in the flat ``params`` (padded to a multiple of 8)."""
    dense: bool


def tcnn_levels(levels: int, log2_table_size: int, base_resolution: int, max_resolution: int,
                input_dim: int) -> list[TcnnLevel]:
    growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / max(levels - 1, 1))
    table = 1 << log2_table_size
    out = []
    for level in range(levels):
        scale = base_resolution * growth ** level - 1.0
        resolution = int(math.ceil(scale)) + 1
        dense = resolution ** input_dim <= table
        entries = min(resolution ** input_dim, table)
        out.append(TcnnLevel(scale, resolution, (entries + 7) // 8 * 8, dense))
    return out


def tcnn_to_table(params: np.ndarray, features: int, levels: int, log2_table_size: int, base_resolution: int,
                  max_resolution: int, input_dim: int) -> np.ndarray:
    """tinycudann's flat ``params`` [P] → our table float32 [E, F]."""
    ours = grid_layout(levels, log2_table_size, base_resolution, max_resolution, input_dim)
    theirs = tcnn_levels(levels, log2_table_size, base_resolution, max_resolution, input_dim)
    expected = sum(t.entries for t in theirs) * features
    params = np.asarray(params, dtype=np.float32).reshape(-1)
    if params.size != expected:
        raise GridConversionError(
            f"tinycudann hash grid holds {params.size} parameters, the configured grid ({levels} levels × "
            f"{features} features, 2^{log2_table_size} entries) needs {expected}: the run's settings differ")
    table = np.zeros((ours.total_entries, features), np.float32)
    start = 0
    for level, t in enumerate(theirs):
        block = params[start:start + t.entries * features].reshape(t.entries, features)
        start += t.entries * features
        size, offset = ours.table_sizes[level], ours.offsets[level]
        if ours.dense[level] and t.dense:
            n = ours.resolutions[level]
            table[offset:offset + size] = _sample_dense(block, t.scale, 0.5, t.resolution, _grid(n + 1, input_dim) / n)
        elif not ours.dense[level] and not t.dense:
            table[offset:offset + size] = block[:size]
        elif ours.dense[level]:  # hashed there, dense here: evaluate theirs at our vertices through the hash
            n = ours.resolutions[level]
            table[offset:offset + size] = _sample_hashed(block, t.scale, _grid(n + 1, input_dim) / n, log2_table_size)
        else:
            raise GridConversionError(f"level {level} is dense in tinycudann and hashed here; cannot convert")
    return table


def table_to_tcnn(table: np.ndarray, levels: int, log2_table_size: int, base_resolution: int,
                  max_resolution: int, input_dim: int) -> np.ndarray:
    """Our table [E, F] → tinycudann's flat ``params`` (dense levels resampled, padding zero)."""
    ours = grid_layout(levels, log2_table_size, base_resolution, max_resolution, input_dim)
    table = np.asarray(table, dtype=np.float32)
    if table.shape[0] != ours.total_entries:
        raise GridConversionError(f"hash grid table has {table.shape[0]} entries, the configured grid needs "
                                  f"{ours.total_entries}: the run's settings differ")
    features = table.shape[1]
    blocks = []
    for level, t in enumerate(tcnn_levels(levels, log2_table_size, base_resolution, max_resolution, input_dim)):
        mine = table[ours.offsets[level]:ours.offsets[level] + ours.table_sizes[level]]
        block = np.zeros((t.entries, features), np.float32)
        if t.dense and ours.dense[level]:
            positions = np.clip((_grid(t.resolution, input_dim) - 0.5) / t.scale, 0.0, 1.0)
            n = ours.resolutions[level]
            block[:len(positions)] = _sample_dense(mine, n, 0.0, n + 1, positions)
        elif not t.dense and not ours.dense[level]:
            block[:len(mine)] = mine
        else:
            raise GridConversionError(f"level {level} is stored differently by tinycudann; cannot convert")
        blocks.append(block.reshape(-1))
    return np.concatenate(blocks)


def _grid(side: int, d: int) -> np.ndarray:
    """Integer vertex coordinates float [side^d, d] in storage order (dimension 0 fastest)."""
    axes = np.meshgrid(*([np.arange(side, dtype=np.float64)] * d), indexing="ij")
    return np.stack([a.reshape(-1) for a in reversed(axes)], axis=-1)


def _sample_dense(block: np.ndarray, scale: float, offset: float, side: int, positions: np.ndarray) -> np.ndarray:
    """Multilinear lookup of a dense level (``side`` vertices per side, vertex at ``x · scale + offset``)."""
    def index(c: np.ndarray) -> np.ndarray:
        c = np.clip(c, 0, side - 1).astype(np.int64)
        return sum(c[:, k] * side ** k for k in range(c.shape[1]))

    return _multilinear(block, positions * scale + offset, index)


def _sample_hashed(block: np.ndarray, scale: float, positions: np.ndarray, log2_table_size: int) -> np.ndarray:
    """Multilinear lookup of a hashed tinycudann level at positions [M, d] in [0, 1]."""
    def index(c: np.ndarray) -> np.ndarray:
        c = c.astype(np.uint64)
        h = np.zeros(len(c), np.uint64)
        for k in range(c.shape[1]):
            h ^= c[:, k] * np.uint64(PRIMES[k])
        return (h & np.uint64((1 << log2_table_size) - 1)).astype(np.int64)

    return _multilinear(block, positions * scale + 0.5, index)


def _multilinear(block: np.ndarray, p: np.ndarray, index) -> np.ndarray:
    """Σ over the 2^d cell corners of ``block[index(corner)]`` weighted by the multilinear weights of ``p``."""
    base = np.floor(p)
    frac = p - base
    out = np.zeros((len(p), block.shape[1]), np.float64)
    for corner in itertools.product((0, 1), repeat=p.shape[1]):
        weight = np.prod([frac[:, k] if bit else 1.0 - frac[:, k] for k, bit in enumerate(corner)], axis=0)
        out += weight[:, None] * block[index(base + corner)]
    return out.astype(np.float32)


def hash_grid_backends(model: "torch.nn.Module") -> dict[str, str]:
    """``module name → implementation`` of every hash grid in ``model`` (recorded with each checkpoint)."""
    from dyntet.nn.encodings import HashGridEncoding

    return {name: module.implementation for name, module in model.named_modules()
            if isinstance(module, HashGridEncoding)}


def adapt_state_dict(state: dict[str, "torch.Tensor"], model: "torch.nn.Module") -> tuple[dict, list[str]]:
    """``state`` with every hash grid in the layout ``model`` uses, and the names of the grids converted.

    A checkpoint written by a tinycudann grid holds ``<grid>.grid.encoding.params``; ours hold
    ``<grid>.grid.table``. Anything else passes through unchanged.
    """
    import torch

    from dyntet.nn.encodings import HashGridEncoding

    state = dict(state)
    converted = []
    for name, module in model.named_modules():
        if not isinstance(module, HashGridEncoding):
            continue
        c = module.config
        args = (c.levels, c.log2_table_size, c.base_resolution, c.max_resolution, c.input_dim)
        ours_key, tcnn_key = f"{name}.grid.table", f"{name}.grid.encoding.params"
        if module.implementation == "tcnn" and ours_key in state:
            table = state.pop(ours_key)
            params = table_to_tcnn(table.detach().cpu().numpy(), *args)
            state[tcnn_key] = torch.from_numpy(params).to(table.device)
            converted.append(name)
        elif module.implementation != "tcnn" and tcnn_key in state:
            params = state.pop(tcnn_key)
            table = tcnn_to_table(params.detach().float().cpu().numpy(), c.features_per_level, *args)
            state[ours_key] = torch.from_numpy(table).to(params.device)
            converted.append(name)
    return state, converted
