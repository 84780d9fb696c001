"""A learnable HDR environment light (cube map) and its split-sum prefiltering (paper §4.3, Eqs. 10–12).

DynTet lights the canonical head with image-based lighting: a 6×R×R radiance cube map learned with the
rest of the model. Shading needs two derived quantities, rebuilt from the map after every optimiser
step by :meth:`CubeMapLight.build` (pure PyTorch, differentiable, any device):

* **Specular**: a chain of cube maps, each the radiance convolved with the GGX lobe of one roughness
  (roughness ``min_roughness`` at full resolution rising to ``max_roughness`` at ``min_resolution``,
  plus a last level at roughness 1); see :mod:`dyntet.render.prefilter` for how.
* **Diffuse**: the cosine-weighted mean radiance over the hemisphere, through order-2 spherical
  harmonics (Ramamoorthi & Hanrahan 2001) projected from a small cube map; accurate to a few percent
  for any light, exact for lights whose irradiance is quadratic in the normal.

Radiance is stored as its logarithm, so it stays positive without clamping (no "dead" texels) and
optimiser steps act multiplicatively, which suits HDR values. Directions are in head space (+Y up,
+Z towards the camera at rest; ``docs/architecture.md``) and cube faces follow
:mod:`dyntet.render.texture`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from dyntet.render.prefilter import MAX_SAMPLES, PrefilterPlan, prefilter_direct, prefilter_operator
from dyntet.render.texture import cube_texel_solid_angles, cube_to_dirs, downsample_cube, sample_cube, sample_cube_mip


@dataclass
class LightConfig:
    """The learnable cube-map light."""

    base_resolution: int = 512
    """Side R of each learnable face (paper: 512; the CPU preview uses 64 or less). A power of two."""
    min_resolution: int = 16
    """Side of the coarsest specular level; the chain halves R down to it. A power of two."""
    min_roughness: float = 0.08
    """Roughness of the sharpest specular level; smoother materials reflect it (no perfect mirrors)."""
    max_roughness: float = 0.5
    """Roughness of the coarsest chain level; one more level at roughness 1 covers rougher materials."""
    init_scale: float = 0.5
    """Initial radiance of every texel (a uniform grey sky)."""
    specular_samples: int = 32
    """GGX directions per texel of the sharpest level; coarser levels use 4× more per halving (capped)."""
    irradiance_resolution: int = 16
    """Cube side from which the diffuse spherical harmonics are projected (capped at base_resolution)."""
    prefilter: Literal["auto", "operator", "direct"] = "auto"
    """How :meth:`CubeMapLight.build` prefilters: 'operator' gathers the (linear) prefilter once into a
    sparse matrix (≈ 0.7 s and ≈ 90 MB at R = 64 on a CPU, shared by every light of the process), after
    which a build is one sparse product (a few ms at R = 64); 'direct' samples the cube maps on every
    build (no set-up; ≈ 1 s per build at R = 128 and minutes at 512 on a CPU, meant for a GPU); 'auto'
    uses the operator up to R = 64 and direct sampling above."""

    def __post_init__(self) -> None:
        for name in ("base_resolution", "min_resolution", "irradiance_resolution"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1 or value & (value - 1):
                raise ValueError(f"LightConfig.{name} must be a power of two >= 1, got {value!r}")
        if not 0.0 < self.min_roughness < self.max_roughness <= 1.0:
            raise ValueError(f"LightConfig needs 0 < min_roughness < max_roughness <= 1, got "
                             f"{self.min_roughness} and {self.max_roughness}")
        if not (self.init_scale > 0 and math.isfinite(self.init_scale)):
            raise ValueError(f"LightConfig.init_scale must be a positive radiance, got {self.init_scale!r}")
        if not isinstance(self.specular_samples, int) or self.specular_samples < 1:
            raise ValueError(f"LightConfig.specular_samples must be a positive int, got {self.specular_samples!r}")
        if self.prefilter not in ("auto", "operator", "direct"):
            raise ValueError(f"LightConfig.prefilter must be 'auto', 'operator' or 'direct', got {self.prefilter!r}")

    def specular_levels(self) -> list[tuple[int, float]]:
        """(resolution, roughness) of every specular level: R, R/2, …, min_resolution with roughness rising
        linearly from min_roughness to max_roughness, then one more level at roughness 1."""
        sizes = [self.base_resolution]
        while sizes[-1] // 2 >= self.min_resolution:
            sizes.append(sizes[-1] // 2)
        rough = np.linspace(self.min_roughness, self.max_roughness, len(sizes)).tolist() if len(sizes) > 1 \
            else [self.min_roughness]
        levels = list(zip(sizes, rough))
        return levels + [(sizes[-1], 1.0)] if rough[-1] < 1.0 else levels

    def use_operator(self) -> bool:
        return self.prefilter == "operator" or (self.prefilter == "auto" and self.base_resolution <= 64)

    def plan(self) -> PrefilterPlan:
        """The specular levels with their sample counts: ``specular_samples`` at full resolution and 4× more
        per halving (constant cost per level; broad lobes need many samples), capped at 1024, which the
        roughness-1 level always gets."""
        def samples(size: int, roughness: float) -> int:
            if roughness >= 1.0:
                return MAX_SAMPLES
            return int(min(max(self.specular_samples * (self.base_resolution // size) ** 2,
                               self.specular_samples), MAX_SAMPLES))

        return PrefilterPlan(self.base_resolution,
                             tuple((size, r, samples(size, r)) for size, r in self.specular_levels()))


@dataclass
class PrefilteredLight:
    """What shading needs from a light, made by :meth:`CubeMapLight.build`.

    Attributes:
        specular: list of float [6, R_k, R_k, 3] radiance maps prefiltered with GGX of increasing roughness.
        roughness: float [K], the roughness of each specular level (strictly increasing, last is 1).
        sh: float [9, 3] order-2 spherical-harmonic coefficients of the *diffuse* term: evaluating them at
            a normal gives the cosine-weighted mean radiance E(n)/π (so a uniform sky of radiance 1 gives 1).
    """

    specular: list[torch.Tensor]
    roughness: torch.Tensor
    sh: torch.Tensor

    def level(self, roughness: torch.Tensor) -> torch.Tensor:
        """Continuous specular level for roughness float [...] (piecewise linear in the roughness table;
        clamped to its range) → float [...]."""
        table = self.roughness.to(roughness.dtype)
        r = roughness.clamp(float(table[0]), float(table[-1]))
        idx = (torch.searchsorted(table, r.detach().contiguous(), right=True) - 1).clamp(0, len(table) - 2)
        low, high = table[idx], table[idx + 1]
        return idx.to(r.dtype) + (r - low) / (high - low)

    def specular_radiance(self, dirs: torch.Tensor, roughness: torch.Tensor) -> torch.Tensor:
        """Prefiltered radiance float [..., 3] seen along reflection directions dirs float [..., 3] (non-zero)
        from a surface of roughness float [...]."""
        if len(self.specular) == 1:
            return sample_cube(self.specular[0], dirs)
        return sample_cube_mip(self.specular, dirs, self.level(roughness))

    def diffuse_radiance(self, normals: torch.Tensor) -> torch.Tensor:
        """Cosine-weighted mean radiance E(n)/π float [..., 3] for unit normals float [..., 3] (≥ 0)."""
        basis = sh_basis(normals.to(self.sh.dtype))                               # [..., 9]
        return (basis @ self.sh).clamp_min(0.0)


class CubeMapLight(nn.Module):
    """Learnable HDR environment light, a cube map of linear radiance [6, R, R, 3].

    Call :meth:`build` once per optimisation step (after the optimiser changed the map) and shade with
    the result — :func:`dyntet.render.pbr.shade` also accepts the light itself and then uses its latest
    build, refusing one that is stale.
    """

    def __init__(self, config: LightConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else LightConfig()
        res = self.config.base_resolution
        self.log_radiance = nn.Parameter(torch.full((6, res, res, 3), math.log(self.config.init_scale)))
        self._built: PrefilteredLight | None = None
        self._built_key: tuple | None = None

    # -- the map ------------------------------------------------------------------------------------
    def radiance(self) -> torch.Tensor:
        """Linear radiance float [6, R, R, 3] (positive)."""
        return self.log_radiance.exp()

    @torch.no_grad()
    def set_radiance_(self, radiance: torch.Tensor) -> None:
        """Overwrite the map with float [6, R, R, 3] linear radiance (values below 1e-6 are raised to it)."""
        if tuple(radiance.shape) != tuple(self.log_radiance.shape):
            raise ValueError(f"radiance must have shape {tuple(self.log_radiance.shape)}, got {tuple(radiance.shape)}")
        self.log_radiance.copy_(radiance.to(self.log_radiance).clamp_min(1e-6).log())

    # -- derived quantities ---------------------------------------------------------------------------
    def build(self) -> PrefilteredLight:
        """Prefilter the current map for shading (differentiable); also kept as :attr:`prefiltered`."""
        cfg = self.config
        pyramid = [self.radiance()]            # box-filtered mips read by the importance samples
        while pyramid[-1].shape[1] > 1:
            pyramid.append(downsample_cube(pyramid[-1]))
        plan = cfg.plan()
        if cfg.use_operator():
            specular = prefilter_operator(plan, pyramid[0].device, pyramid[0].dtype).apply(pyramid)
        else:
            specular = prefilter_direct(pyramid, plan)
        table = torch.tensor([r for _, r, _ in plan.levels], dtype=pyramid[0].dtype, device=pyramid[0].device)
        irr_res = min(cfg.irradiance_resolution, cfg.base_resolution)
        irr_src = next(p for p in pyramid if p.shape[1] == irr_res)
        built = PrefilteredLight(specular=specular, roughness=table, sh=_diffuse_sh(irr_src))
        self._built, self._built_key = built, self._state_key()
        return built

    def _state_key(self) -> tuple:
        """Changes whenever the map does: in-place updates bump the version, ``.to()`` moves the storage."""
        p = self.log_radiance
        return p.data_ptr(), p._version, p.device, p.dtype

    @property
    def prefiltered(self) -> PrefilteredLight:
        """The latest :meth:`build`; an error if there is none or the map changed since."""
        if self._built is None:
            raise RuntimeError("CubeMapLight.build() has not been called; build the light before shading")
        if self._built_key != self._state_key():
            raise RuntimeError("the light's cube map changed since the last build() (optimiser step, "
                               "state-dict load or device move); call build() again before shading")
        return self._built

    def regulariser(self) -> torch.Tensor:
        """Colour-neutrality prior: the solid-angle-weighted mean of |L_c − mean_c L| over the sphere.

        Appearance and light are ambiguous (a blue light on a white face looks like a white light on a
        blue face); preferring a grey light pushes colour into the albedo, which is what an artist wants
        from the baked texture. Brightness variation costs nothing: a grey sky of any pattern scores 0.
        Returns a float scalar.
        """
        radiance = self.radiance()
        omega = cube_texel_solid_angles(radiance.shape[1], device=radiance.device, dtype=radiance.dtype)
        chroma = (radiance - radiance.mean(dim=-1, keepdim=True)).abs().mean(dim=-1)
        return (chroma * omega).sum() / (4 * math.pi)

    # -- export ------------------------------------------------------------------------------------
    @torch.no_grad()
    def to_equirect(self, height: int) -> np.ndarray:
        """Latitude-longitude image of the radiance for a Blender World, float32 [H, 2H, 3], linear.

        The map is laid out as Blender's Environment Texture node reads it with default mapping, after
        head space is turned into Blender's Z-up frame by ``(x, y, z) → (x, −z, y)``: row 0 is the zenith
        (head +Y), the middle row the horizon; the centre column looks along head +X, column ``W/4``
        along head −Z (behind the head), ``3W/4`` along head +Z (the face's front). Written to ``.hdr``
        top row first it needs no flip. The light is fixed to the head; if the head moves in the scene,
        parent the world rotation to it or accept the difference.
        """
        if not isinstance(height, int) or height < 1:
            raise ValueError(f"equirect height must be a positive int, got {height!r}")
        dirs = equirect_dirs(height, device=self.log_radiance.device)
        return sample_cube(self.radiance(), dirs).float().cpu().numpy()


def equirect_dirs(height: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Head-space unit direction of every pixel centre of a Blender-convention equirect map: float [H, 2H, 3].

    Blender's convention (checked with Cycles): pixel (u, v) with v = 1 at the top looks along
    ``(sin θ cos φ, sin θ sin φ, cos θ)`` in Blender's frame, with ``φ = 2π (0.5 − u)``, ``θ = π (1 − v)``.
    """
    width = 2 * height
    u = (torch.arange(width, device=device, dtype=torch.float64) + 0.5) / width
    v = 1 - (torch.arange(height, device=device, dtype=torch.float64) + 0.5) / height
    phi = (2 * math.pi * (0.5 - u))[None, :]
    theta = (math.pi * (1 - v))[:, None]
    bx, by, bz = theta.sin() * phi.cos(), theta.sin() * phi.sin(), theta.cos().expand(height, width)
    return torch.stack([bx, bz, -by], dim=-1).float()     # Blender (X, Y, Z) → head (X, Z, −Y)


# -- diffuse -----------------------------------------------------------------------------------------

_SH_BAND = (0, 1, 1, 1, 2, 2, 2, 2, 2)
_COSINE_LOBE = (1.0, 2.0 / 3.0, 0.25)
"""Â_l / π for l = 0, 1, 2: the clamped-cosine kernel in SH, divided by π for a mean radiance."""


def sh_basis(dirs: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics up to order 2 at unit directions float [..., 3] → float [..., 9]
    (order: Y00, Y1−1, Y10, Y11, Y2−2, Y2−1, Y20, Y21, Y22)."""
    x, y, z = dirs.unbind(-1)
    return torch.stack([
        torch.full_like(x, 0.28209479177387814),
        0.4886025119029199 * y, 0.4886025119029199 * z, 0.4886025119029199 * x,
        1.0925484305920792 * x * y, 1.0925484305920792 * y * z, 0.31539156525252005 * (3 * z * z - 1),
        1.0925484305920792 * x * z, 0.5462742152960396 * (x * x - y * y),
    ], dim=-1)


def _diffuse_sh(radiance: torch.Tensor) -> torch.Tensor:
    """Radiance cube float [6, R, R, 3] → SH coefficients float [9, 3] of E(n)/π (see :class:`PrefilteredLight`)."""
    res = radiance.shape[1]
    dirs = cube_to_dirs(res, device=radiance.device, dtype=radiance.dtype).reshape(-1, 3)
    omega = cube_texel_solid_angles(res, device=radiance.device, dtype=radiance.dtype).reshape(-1, 1)
    coeffs = sh_basis(dirs).t() @ (radiance.reshape(-1, 3) * omega)             # [9, 3] ∫ L Y dω
    lobe = torch.tensor([_COSINE_LOBE[band] for band in _SH_BAND], dtype=radiance.dtype, device=radiance.device)
    return coeffs * lobe[:, None]
