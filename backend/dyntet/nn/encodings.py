"""Input encodings: the frequency (positional) encoding of f1/f2 and the multiresolution hash grid of G.

DynTet encodes grid positions for the geometry networks with sines and cosines (paper Eq. 7; the paper
finds a hash grid makes the surface noisy) and canonical positions for the appearance network with a
multiresolution hash grid (Müller et al. 2022).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from dyntet.nn import hashgrid_tcnn
from dyntet.nn.hashgrid_tcnn import TcnnHashGrid
from dyntet.nn.hashgrid_torch import MAX_INPUT_DIM, HashGridLayout, TorchHashGrid, grid_layout

log = logging.getLogger(__name__)

Implementation = Literal["auto", "torch", "numba", "tcnn"]


class FrequencyEncoding(nn.Module):
    """γ(v) = (sin(2^l π v), cos(2^l π v)) for l = 0 … L−1, per input dimension (paper Eq. 7).

    Output layout (``output_dim = input_dim · (include_input + 2 L)``)::

        [v (if include_input), sin(2^0 π v), cos(2^0 π v), sin(2^1 π v), cos(2^1 π v), …]

    where each block holds all ``input_dim`` components. Inputs are used as given (grid space
    ``[-0.5, 0.5]^3`` for f1/f2), so the lowest frequency has period 2, twice the grid's extent.

    Args:
        num_frequencies: L ≥ 0, the number of octaves.
        include_input: prepend the raw input (helps the MLP represent low-frequency trends).
        input_dim: components per input point.

    Shapes: float [..., input_dim] → float [..., output_dim].
    """

    def __init__(self, num_frequencies: int = 6, include_input: bool = True, input_dim: int = 3) -> None:
        super().__init__()
        if not isinstance(num_frequencies, int) or num_frequencies < 0:
            raise ValueError(f"num_frequencies must be an int >= 0, got {num_frequencies!r}")
        if not isinstance(input_dim, int) or input_dim < 1:
            raise ValueError(f"input_dim must be a positive int, got {input_dim!r}")
        if num_frequencies == 0 and not include_input:
            raise ValueError("a frequency encoding with no frequencies and no raw input would output nothing")
        self.num_frequencies = num_frequencies
        self.include_input = include_input
        self.input_dim = input_dim
        self.register_buffer("_scales", math.pi * 2.0 ** torch.arange(num_frequencies, dtype=torch.float32),
                             persistent=False)

    @property
    def output_dim(self) -> int:
        return self.input_dim * (int(self.include_input) + 2 * self.num_frequencies)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_dim:
            raise ValueError(f"FrequencyEncoding expects [..., {self.input_dim}], got shape {tuple(x.shape)}")
        angles = x[..., None, :] * self._scales.to(x.dtype)[:, None]              # [..., L, D]
        waves = torch.stack([angles.sin(), angles.cos()], dim=-2)                  # [..., L, 2, D]
        waves = waves.reshape(*x.shape[:-1], 2 * self.num_frequencies * self.input_dim)
        return torch.cat([x, waves], dim=-1) if self.include_input else waves


@dataclass
class HashGridConfig:
    """Multiresolution hash grid (Müller et al. 2022); defaults are the paper's appearance encoder."""

    levels: int = 16
    """Number of resolution levels L."""
    features_per_level: int = 2
    """Features F stored per table entry; the encoding outputs L·F values."""
    log2_table_size: int = 19
    """log2 of the entries T per hashed level (coarse levels that fit are stored densely instead)."""
    base_resolution: int = 16
    """Cells per side of the coarsest level."""
    max_resolution: int = 2048
    """Cells per side of the finest level; levels grow geometrically in between."""
    input_dim: int = 3
    """Dimension d of the inputs (2 for images, 3 for positions)."""
    implementation: Implementation = "auto"
    """'torch' (pure PyTorch, any device; the reference), 'numba' (compiled CPU kernels, same weights as
    torch; other devices fall back to torch), 'tcnn' (tinycudann, CUDA only, error when missing) or
    'auto' (tcnn when CUDA and tinycudann are available, else numba when it imports, else torch)."""

    def __post_init__(self) -> None:
        ints = {"levels": (self.levels, 1), "features_per_level": (self.features_per_level, 1),
                "base_resolution": (self.base_resolution, 1), "max_resolution": (self.max_resolution, 1)}
        for name, (value, low) in ints.items():
            if not isinstance(value, int) or value < low:
                raise ValueError(f"HashGridConfig.{name} must be an int >= {low}, got {value!r}")
        if not isinstance(self.log2_table_size, int) or not 4 <= self.log2_table_size <= 30:
            raise ValueError(f"HashGridConfig.log2_table_size must be an int in [4, 30], got {self.log2_table_size!r}")
        if self.max_resolution < self.base_resolution:
            raise ValueError(f"HashGridConfig.max_resolution ({self.max_resolution}) must be >= "
                             f"base_resolution ({self.base_resolution})")
        if not isinstance(self.input_dim, int) or not 1 <= self.input_dim <= MAX_INPUT_DIM:
            raise ValueError(f"HashGridConfig.input_dim must be in [1, {MAX_INPUT_DIM}], got {self.input_dim!r}")
        if self.implementation not in ("auto", "torch", "numba", "tcnn"):
            raise ValueError(f"HashGridConfig.implementation must be 'auto', 'torch', 'numba' or 'tcnn', "
                             f"got {self.implementation!r}")

    def layout(self) -> HashGridLayout:
        """Per-level resolutions, dense/hashed storage and table offsets."""
        return grid_layout(self.levels, self.log2_table_size, self.base_resolution, self.max_resolution,
                           self.input_dim)

    def build(self) -> HashGridEncoding:
        return HashGridEncoding(self)


_announced: set[str] = set()


def _announce(message: str) -> None:
    """Log a backend choice once per process (training builds many encoders; one line is enough)."""
    if message not in _announced:
        _announced.add(message)
        log.info(message)


def resolve_implementation(requested: Implementation) -> Literal["torch", "numba", "tcnn"]:
    """Turn 'auto' into a concrete choice; an explicit choice is returned unchanged (and checked later)."""
    if requested != "auto":
        return requested
    reason = hashgrid_tcnn.unavailable_reason()
    if reason is None:
        _announce("hash grid: using tinycudann (fused CUDA kernels)")
        return "tcnn"
    if _numba_grid() is not None:
        _announce(f"hash grid: using the compiled CPU kernels (numba) because {reason}")
        return "numba"
    _announce(f"hash grid: using the pure-PyTorch implementation because {reason} and numba does not import "
              "(several times slower; fine for short CPU previews)")
    return "torch"


def _numba_grid() -> type[TorchHashGrid] | None:
    try:
        from dyntet.nn.hashgrid_numba import NumbaHashGrid
    except ImportError:
        return None
    return NumbaHashGrid


class HashGridEncoding(nn.Module):
    """Multiresolution hash encoding with a selectable implementation.

    Inputs float [..., d] in [0, 1]^d (values outside are clamped onto the cube) → float32 [..., L·F],
    level-major. The table starts uniform in ±1e-4 so the network begins from a near-constant field.
    ``implementation`` holds the concrete choice ('torch', 'numba' or 'tcnn'); torch and numba share
    weights, tcnn's do not interchange with theirs.
    """

    def __init__(self, config: HashGridConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else HashGridConfig()
        self.implementation = resolve_implementation(self.config.implementation)
        c = self.config
        args = (c.levels, c.features_per_level, c.log2_table_size, c.base_resolution, c.max_resolution, c.input_dim)
        if self.implementation == "tcnn":
            self.grid: nn.Module = TcnnHashGrid(*args)
        elif self.implementation == "numba":
            grid_class = _numba_grid()
            if grid_class is None:
                raise RuntimeError("hash grid implementation 'numba' was requested but numba does not import; "
                                   "use implementation='torch' (or 'auto')")
            self.grid = grid_class(*args)
        else:
            self.grid = TorchHashGrid(*args)
        if self.config.implementation != "auto":
            _announce(f"hash grid: using the {self.implementation} implementation (requested explicitly)")

    @property
    def output_dim(self) -> int:
        return self.config.levels * self.config.features_per_level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.config.input_dim
        if x.shape[-1] != d:
            raise ValueError(f"HashGridEncoding expects inputs [..., {d}] in [0, 1], got shape {tuple(x.shape)}")
        lead = x.shape[:-1]
        return self.grid(x.reshape(-1, d)).reshape(*lead, self.output_dim)


is_tcnn_available = hashgrid_tcnn.is_available
