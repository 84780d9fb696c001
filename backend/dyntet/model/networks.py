"""The three DynTet networks: expression encoder, geometry (f1, f2) and appearance G."""

from __future__ import annotations

import torch
from torch import nn

from dyntet.model.config import AppearanceConfig, GeometryConfig
from dyntet.nn.encodings import FrequencyEncoding, HashGridConfig, HashGridEncoding
from dyntet.nn.mlp import MLP


class ExpressionEncoder(nn.Module):
    """A window of expression coefficients → one feature vector (paper §4.2: 4-layer 1-D conv encoder).

    Input ``windows`` float [B, W, K] (W frames of K coefficients, centred on the current frame);
    output float [B, D]. The coefficients are first standardised with the training clip's statistics
    (``input_mean``, ``input_scale``): raw α of a face model can be tiny, and then every frame looks
    alike to the encoder and no expression-dependent motion is learnt (measured). Four stride-2
    convolutions shrink the window, then the remaining positions are averaged, so any odd W works.
    The convolutions run as unfold + one matrix product each: the same maths as ``Conv1d``, many times
    faster on a CPU for these tiny inputs.
    """

    def __init__(self, num_expression: int, feature_dim: int = 256) -> None:
        super().__init__()
        channels = [num_expression, 64, 128, feature_dim, feature_dim]
        self.convs = nn.ModuleList(nn.Conv1d(channels[i], channels[i + 1], kernel_size=3, stride=2, padding=1)
                                   for i in range(4))
        self.activation = nn.LeakyReLU(0.02)
        self.register_buffer("input_mean", torch.zeros(num_expression))
        self.register_buffer("input_scale", torch.ones(num_expression))

    @torch.no_grad()
    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardise inputs with these per-coefficient statistics (std floored at 1e-3)."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_scale.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-3))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        x = ((windows - self.input_mean) / self.input_scale).transpose(1, 2)          # [B, K, W]
        for i, conv in enumerate(self.convs):
            cols = nn.functional.pad(x, (1, 1)).unfold(2, 3, 2)                       # [B, C, L', 3]
            batch, channels, length, _ = cols.shape
            cols = cols.permute(0, 2, 1, 3).reshape(batch * length, channels * 3)
            out = torch.addmm(conv.bias, cols, conv.weight.reshape(conv.out_channels, channels * 3).t())
            x = out.reshape(batch, length, -1).transpose(1, 2)
            if i < 3:
                x = self.activation(x)
        return x.mean(dim=2)


class GeometryNetwork(nn.Module):
    """f1(x) → (SDF s, elastic score e ≥ 0) and f2(x, feature) → offset (paper Eq. 5).

    f2's first layer acts on ``[γ(x), feature]``; it is split into a position part (computed once per
    point, frame independent) and an expression part (once per frame), which is exactly the same map
    but lets generation batch frames without recomputing the position half.
    Positions are in grid space ``[-0.5, 0.5]^3``; SDF and offsets are in grid units.
    """

    def __init__(self, config: GeometryConfig, num_expression: int) -> None:
        super().__init__()
        self.config = config
        self.encoding = FrequencyEncoding(config.num_frequencies, include_input=True)
        width = config.hidden_dim
        self.f1 = MLP(self.encoding.output_dim, 2, width, config.num_layers)
        with torch.no_grad():  # elastic scores start small (rigid); the deformation loss raises them where needed
            self.f1.layers[-1].bias[1] = -4.0
        self.expression_encoder = ExpressionEncoder(num_expression, config.expression_feature_dim)
        self.f2_position = nn.Linear(self.encoding.output_dim, width)
        self.f2_expression = nn.Linear(config.expression_feature_dim, width, bias=False)
        self.f2_rest = MLP(width, 3, width, config.num_layers - 1)
        nn.init.zeros_(self.f2_rest.layers[-1].weight)  # start with no deformation
        nn.init.zeros_(self.f2_rest.layers[-1].bias)

    def sdf_elastic(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points float [N, 3] grid space → sdf [N], elastic [N] (softplus, so ≥ 0)."""
        out = self.f1(self.encoding(points))
        return out[:, 0], nn.functional.softplus(out[:, 1])

    def position_code(self, points: torch.Tensor) -> torch.Tensor:
        """The frame-independent half of f2's first layer: float [N, hidden]."""
        return self.f2_position(self.encoding(points))

    def offsets(self, position_code: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """f2 for N points and B frames: position_code [N, hidden], feature [B, D] → offsets [B, N, 3]."""
        hidden = torch.relu(position_code[None] + self.f2_expression(feature)[:, None])
        return self.config.max_offset * torch.tanh(self.f2_rest(hidden))


class AppearanceNetwork(nn.Module):
    """G(x̄, α) (paper Eq. 9): canonical position (+ expression) → kd [N, 3] and ORM [N, 3].

    ORM channels are occlusion (ambient occlusion factor), roughness in [0.08, 1] and metalness.
    """

    def __init__(self, config: AppearanceConfig, expression_feature_dim: int) -> None:
        super().__init__()
        self.config = config
        self.encoding = HashGridEncoding(HashGridConfig(
            levels=config.hash_levels, features_per_level=config.hash_features,
            log2_table_size=config.hash_log2_table, base_resolution=config.hash_base_resolution,
            max_resolution=config.hash_max_resolution, input_dim=3, implementation=config.implementation))
        self.expression_projection = (nn.Linear(expression_feature_dim, config.expression_dim)
                                      if config.expression_dim > 0 else None)
        in_dim = self.encoding.output_dim + config.expression_dim
        self.mlp = MLP(in_dim, 6, config.hidden_dim, config.num_layers)

    def forward(self, points_unit: torch.Tensor, feature: torch.Tensor | None,
                frame_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """points_unit float [N, 3] in [0, 1]^3 → kd, orm.

        ``feature`` is float [N, D] (one per point), or float [B, D] (one per frame) with ``frame_index``
        int64 [N] naming each point's frame — then the projection runs once per frame, not per pixel.
        """
        inputs = [self.encoding(points_unit.clamp(0.0, 1.0))]
        if self.expression_projection is not None:
            if feature is None:
                raise ValueError("this appearance network is conditioned on expression: pass a feature")
            projected = torch.tanh(self.expression_projection(feature))
            inputs.append(projected if frame_index is None else projected.index_select(0, frame_index))
        out = self.mlp(torch.cat(inputs, dim=-1))
        kd = torch.sigmoid(out[:, :3])
        occlusion = torch.sigmoid(out[:, 3:4] + 3.0)
        roughness = 0.08 + 0.92 * torch.sigmoid(out[:, 4:5])
        metalness = torch.sigmoid(out[:, 5:6] - 3.0)
        return kd, torch.cat([occlusion, roughness, metalness], dim=-1)
