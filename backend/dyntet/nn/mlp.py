"""A plain multilayer perceptron: Linear layers joined by an activation (the paper's "ReLU-Linear" MLPs)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class MLP(nn.Module):
    """``num_layers`` Linear layers, ``hidden_dim`` wide, with ``activation`` between them.

    DynTet's f1/f2 are 3-layer 128-wide MLPs and its appearance network G a 5-layer 256-wide MLP
    (paper §5.1); ``num_layers`` counts Linear layers, so ``num_layers=1`` is a single affine map.
    ``layers`` holds only the Linear modules (``layers[-1]`` is the output layer, handy for zero-init).

    Args:
        in_dim: input features (> 0).
        out_dim: output features (> 0).
        hidden_dim: width of every hidden layer (> 0; unused when ``num_layers == 1``).
        num_layers: number of Linear layers (≥ 1).
        activation: factory of the hidden activation module (a class such as ``nn.ReLU``).
        output_activation: factory of an activation applied to the output, or None for a linear output.

    Shapes: input float [..., in_dim] → output float [..., out_dim].
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, num_layers: int,
                 activation: Callable[[], nn.Module] = nn.ReLU,
                 output_activation: Callable[[], nn.Module] | None = None) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden_dim", hidden_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"MLP {name} must be a positive int, got {value!r}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"MLP num_layers counts Linear layers and must be >= 1, got {num_layers!r}")
        widths = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.in_dim, self.out_dim = in_dim, out_dim
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = activation()
        self.output_activation = output_activation() if output_activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"MLP expects inputs [..., {self.in_dim}], got shape {tuple(x.shape)}")
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.output_activation(self.layers[-1](x))
