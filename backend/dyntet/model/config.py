"""Model configuration: one dataclass per component, defaults are the paper's (§5.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class GeometryConfig:
    """f1 (SDF + elastic score) and f2 (expression-driven offsets) over the tetrahedral grid."""

    grid_resolution: int = 128
    """Tet-grid resolution (lattice spacing 1/r of the grid cube); paper: 128."""
    grid_size_m: float = 0.34
    """Side of the grid cube in head space (metres): it must contain the whole head."""
    num_frequencies: int = 6
    """Frequency encoding levels L (paper Eq. 7)."""
    hidden_dim: int = 128
    num_layers: int = 3
    expression_window: int = 27
    """Frames of α around the current one fed to the expression encoder (edges clamped)."""
    expression_feature_dim: int = 256
    smoothing_passes: int = 0
    """Taubin λ|μ smoothing pairs applied to every decoded mesh (:mod:`dyntet.geometry.smoothing`); 0 is
    the paper's plain marching tets."""
    face_motion_reach_m: float = 0.0
    """How far from the face surface (metres) the face model's own expression motion is carried into
    the grid under f2 (:mod:`dyntet.model.face_motion`): Δv = e·f2 + B(x)(α − ᾱ). 0 is the paper's
    Δv = e·f2 alone (and the full preset); the preview preset uses 0.03."""
    max_offset: float = 16.0
    """Bound on |f2| (tanh-scaled, grid units); Δv = e · f2 (Eq. 5). The bound only removes the e/f2
    scale ambiguity: it must be large, or the elastic regulariser (λ4 = λ3) wins against the deformation
    loss and no expression motion is learnt (measured on the synthetic subject: with 0.1 the deformation loss does not move; 16 fits
    the rig's motion to 27 % of its energy in 1200 steps against 44 % with 4)."""

    def __post_init__(self) -> None:
        if self.grid_resolution < 4 or self.grid_resolution % 2:
            raise ValueError(f"grid_resolution must be an even number >= 4, got {self.grid_resolution}")
        if self.face_motion_reach_m < 0:
            raise ValueError(f"face_motion_reach_m must be >= 0 (0: off), got {self.face_motion_reach_m}")
        if self.expression_window < 1 or self.expression_window % 2 == 0:
            raise ValueError(f"expression_window must be odd and positive, got {self.expression_window}")


@dataclass
class AppearanceConfig:
    """G(x̄, α): hash grid + MLP → kd (3) and occlusion/roughness/metalness (3)."""

    hash_levels: int = 16
    hash_features: int = 2
    hash_log2_table: int = 19
    hash_base_resolution: int = 16
    hash_max_resolution: int = 2048
    hidden_dim: int = 256
    num_layers: int = 5
    expression_dim: int = 16
    """Width of the projection of the expression feature fed to G (0 disables the α dependence)."""
    implementation: Literal["auto", "torch", "numba", "tcnn"] = "auto"


@dataclass
class LightConfig:
    cube_resolution: int = 512
    """Side of each learnable cube-map face (paper: 6×512×512)."""


@dataclass
class ModelConfig:
    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    light: LightConfig = field(default_factory=LightConfig)
