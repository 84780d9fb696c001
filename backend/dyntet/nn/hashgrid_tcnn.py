"""tinycudann's fused CUDA hash grid behind the interface of :class:`~dyntet.nn.hashgrid_torch.TorchHashGrid`.

tinycudann (https://github.com/NVlabs/tiny-cuda-nn) is an optional extra built by users who have CUDA;
it is imported only when this backend is chosen. Its table layout and cell convention differ slightly
from the PyTorch reference (it offsets positions by half a cell), so weights do not transfer between the
two implementations: a checkpoint records which one trained it (``HashGridEncoding.implementation``).
"""

from __future__ import annotations

import importlib
import math

import torch
from torch import nn


def is_available() -> bool:
    """True when CUDA is usable and the ``tinycudann`` package imports."""
    return unavailable_reason() is None


def unavailable_reason() -> str | None:
    """Why tinycudann cannot run here (None when it can)."""
    if not torch.cuda.is_available():
        return "CUDA is not available to torch"
    try:
        importlib.import_module("tinycudann")
    except Exception as exc:  # an installed but broken build raises more than ImportError
        return f"tinycudann does not import ({type(exc).__name__}: {exc})"
    return None


class TcnnHashGrid(nn.Module):
    """tinycudann ``HashGrid`` encoding; inputs float [N, d] in [0, 1]^d on CUDA → float32 [N, L·F]."""

    def __init__(self, levels: int, features_per_level: int, log2_table_size: int, base_resolution: int,
                 max_resolution: int, input_dim: int) -> None:
        super().__init__()
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"hash grid implementation 'tcnn' was requested but {reason}; "
                               "use implementation='torch' (or 'auto') on this machine")
        tcnn = importlib.import_module("tinycudann")
        growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / max(levels - 1, 1))
        self.input_dim = input_dim
        self.features_per_level = features_per_level
        self._levels = levels
        self.encoding = tcnn.Encoding(n_input_dims=input_dim, encoding_config={
            "otype": "HashGrid", "n_levels": levels, "n_features_per_level": features_per_level,
            "log2_hashmap_size": log2_table_size, "base_resolution": base_resolution,
            "per_level_scale": growth,
        })

    @property
    def output_dim(self) -> int:
        return self._levels * self.features_per_level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoding(x.clamp(0.0, 1.0)).float()
