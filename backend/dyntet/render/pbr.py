"""Physically based shading with image-based light: split-sum GGX / Cook–Torrance (paper Eqs. 10–12).

A surface point with albedo ``kd``, occlusion ``o``, roughness ``r`` and metalness ``m`` (ORM, as glTF
packs them) seen from direction ``v`` is shaded as

    F0       = lerp(0.04, kd, m)                      specular reflectance at normal incidence (Eq. 12's k_s)
    (A, B)   = fg_lut(n·v, r)                         split-sum BRDF integral: ∫ f·cos = F0·A + B
    specular = prefiltered(reflect(v, n), r) · (F0·A + B)
    diffuse  = kd · (1 − m) · irradiance(n) · (1 − (F0·A + B))     [energy_conserving]
    rgb      = o · (diffuse + specular)

``irradiance(n)`` is the cosine-weighted *mean* radiance E(n)/π, i.e. the Lambertian BRDF kd/π is
applied, so a white surface under a uniform sky of radiance 1 shades to 1.

Two choices, stated:

* **Occlusion multiplies both terms**, as the paper renders ``k_o · L(v, ω_o)`` (§4.3) and glTF applies
  occlusion to all image-based light.
* **Energy conservation is on by default**: the diffuse term is scaled by ``1 − (F0·A + B)``, the share of
  light the specular layer did not reflect. That makes a white dielectric a perfect white-furnace
  reflector and matches the layered dielectric of glTF and of Blender's Principled BSDF (4.x), where the
  baked materials end up. ``energy_conserving=False`` gives the paper's Eq. 11 literally (diffuse not
  reduced), which over-brightens grazing angles by up to the specular albedo.

All colours are linear RGB. Reference: Karis, "Real Shading in Unreal Engine 4", SIGGRAPH 2013 course.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from dyntet.render import ggx
from dyntet.render.light import CubeMapLight, PrefilteredLight
from dyntet.render.texture import sample_texture

log = logging.getLogger(__name__)

DIELECTRIC_F0 = 0.04
"""Normal-incidence reflectance of non-metals (index of refraction ≈ 1.5)."""

_LUT_VERSION = 1
_lut_memory: dict[tuple[str, str], torch.Tensor] = {}
"""Loaded tables by (cache file, device); shared, so callers must not modify them in place."""


# -- the split-sum BRDF table --------------------------------------------------------------------


def cache_dir() -> Path:
    """Where derived tables are cached: ``$DYNTET_CACHE_DIR``, else ``~/.cache/dyntet``."""
    env = os.environ.get("DYNTET_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dyntet"


def fg_lut(resolution: int = 256, samples: int = 512, device: torch.device | str | None = None) -> torch.Tensor:
    """The split-sum BRDF integration table, computed once and cached on disk.

    ``lut[i, j] = (A, B)`` with ``∫ f_GGX(v, l) (n·l) dl = F0·A + B`` for a GGX microfacet BRDF with
    height-correlated Smith masking and Schlick's Fresnel, at ``n·v = (j + 0.5) / R`` and roughness
    ``r = 1 − (i + 0.5) / R`` (α = r²). Laid out as an image with u = n·v and v = roughness, so
    ``sample_texture(lut, stack([n_dot_v, roughness], -1))`` reads it.

    The cache file ``fg_lut_v{version}_{R}_{samples}.npy`` in :func:`cache_dir` is written atomically and
    recomputed when missing, unreadable or implausible; an unwritable cache only costs the recompute.

    Returns:
        float32 [R, R, 2] on ``device``, values in [0, 1].
    """
    if not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"fg_lut resolution must be an int >= 2, got {resolution!r}")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"fg_lut samples must be a positive int, got {samples!r}")
    path = cache_dir() / f"fg_lut_v{_LUT_VERSION}_{resolution}_{samples}.npy"
    key = (str(path), str(torch.device("cpu") if device is None else torch.device(device)))
    if key not in _lut_memory:
        cpu_key = (str(path), "cpu")
        if cpu_key not in _lut_memory:
            table = _load_lut(path, resolution)
            if table is None:
                table = compute_fg_lut(resolution, samples)
                _save_lut(path, table)
            _lut_memory[cpu_key] = torch.from_numpy(table)
        _lut_memory[key] = _lut_memory[cpu_key].to(key[1])
    return _lut_memory[key]


def compute_fg_lut(resolution: int, samples: int) -> np.ndarray:
    """Integrate the table (see :func:`fg_lut`): float32 [R, R, 2].

    Microfacet normals h are drawn from the GGX distribution of normals visible from v (Heitz 2018), and
    l = reflect(v, h); then f·(n·l)/pdf(l) = F·G2(v, l)/G1(v). Splitting Schlick's F = F0·(1 − Fc) + Fc
    with Fc = (1 − v·h)^5 gives A (the F0 part) and B. A Hammersley set makes the table deterministic;
    512 samples put it within about 0.005 of the exact integral, grazing angles included.
    """
    n_dot_v = (np.arange(resolution) + 0.5) / resolution                  # columns
    roughness = 1 - (np.arange(resolution) + 0.5) / resolution            # rows, top = rough
    view = np.stack([np.sqrt(1 - n_dot_v ** 2), np.zeros_like(n_dot_v), n_dot_v], -1)   # [R, 3]
    out = np.empty((resolution, resolution, 2), dtype=np.float64)
    for row, r in enumerate(roughness):
        alpha = r * r
        h = ggx.sample_visible_normals(view, alpha, samples)                          # [R, S, 3]
        v_dot_h = np.clip((h * view[:, None]).sum(-1), 0, 1)                          # [R, S]
        n_dot_l = 2 * v_dot_h * h[..., 2] - n_dot_v[:, None]                          # l = 2(v·h)h − v
        valid = n_dot_l > 0
        lambda_v = ggx.smith_lambda(n_dot_v, alpha * alpha)[:, None]
        lambda_l = ggx.smith_lambda(np.where(valid, n_dot_l, 1.0), alpha * alpha)
        weight = np.where(valid, (1 + lambda_v) / (1 + lambda_v + lambda_l), 0.0)   # G2 / G1(v)
        fc = (1 - v_dot_h) ** 5
        out[row, :, 0] = (weight * (1 - fc)).mean(axis=1)
        out[row, :, 1] = (weight * fc).mean(axis=1)
    return out.astype(np.float32)


def _load_lut(path: Path, resolution: int) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        log.warning("split-sum LUT cache %s is unreadable (%s); recomputing it", path, exc)
        return None
    plausible = (table.shape == (resolution, resolution, 2) and table.dtype == np.float32
                 and bool(np.isfinite(table).all()) and table.min() >= 0 and table.max() <= 1.01)
    if not plausible:
        log.warning("split-sum LUT cache %s holds implausible data; recomputing it", path)
        return None
    return table


def _save_lut(path: Path, table: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, table, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("could not cache the split-sum LUT at %s (%s); it will be recomputed next run", path, exc)


# -- shading -------------------------------------------------------------------------------------


def view_directions(positions: torch.Tensor, camera_position: torch.Tensor) -> torch.Tensor:
    """Unit directions from surface points float [..., 3] towards the camera centre float [3] (or
    broadcastable) — the ω_o that :func:`shade` takes. Points and camera must share a space."""
    return torch.nn.functional.normalize(camera_position - positions, dim=-1)


def shade(normals: torch.Tensor, view_dirs: torch.Tensor, kd: torch.Tensor, orm: torch.Tensor,
          light: PrefilteredLight | CubeMapLight, *, energy_conserving: bool = True,
          lut: torch.Tensor | None = None) -> torch.Tensor:
    """Shade surface points with a prefiltered environment light (see the module docstring).

    Args:
        normals: float [..., 3] surface normals (normalised here), in the light's space (head space).
        view_dirs: float [..., 3] unit directions from the point towards the camera, same space.
        kd: float [..., 3] base colour / diffuse albedo, linear, in [0, 1].
        orm: float [..., 3] occlusion, roughness, metalness, each in [0, 1].
        light: the result of :meth:`CubeMapLight.build`, or the light itself (its latest build is used).
        energy_conserving: scale the diffuse term by one minus the specular albedo (default; see above).
        lut: a table from :func:`fg_lut` (default: the cached 256² table on the inputs' device).

    Returns:
        float [..., 3] linear radiance towards the camera; differentiable w.r.t. every tensor input and
        the light's cube map.
    """
    lead = normals.shape[:-1]
    for name, t in (("normals", normals), ("view_dirs", view_dirs), ("kd", kd), ("orm", orm)):
        if t.shape != (*lead, 3):
            raise ValueError(f"shade: {name} must be [..., 3] matching normals {tuple(normals.shape)}, "
                             f"got {tuple(t.shape)}")
    if isinstance(light, CubeMapLight):
        light = light.prefiltered
    elif not isinstance(light, PrefilteredLight):
        raise TypeError(f"shade: light must be a CubeMapLight or the PrefilteredLight its build() returns, "
                        f"got {type(light).__name__}")
    if lut is None:
        lut = fg_lut(device=normals.device)
    n = torch.nn.functional.normalize(normals, dim=-1)
    cos_v = (n * view_dirs).sum(-1, keepdim=True)
    n_dot_v = cos_v.clamp(1e-4, 1.0)
    reflected = 2 * cos_v * n - view_dirs
    occlusion, roughness, metalness = orm.clamp(0.0, 1.0).split(1, dim=-1)
    f0 = torch.lerp(torch.full_like(kd, DIELECTRIC_F0), kd, metalness)
    scale_bias = sample_texture(lut.to(kd.dtype), torch.cat([n_dot_v, roughness], dim=-1))
    spec_albedo = f0 * scale_bias[..., :1] + scale_bias[..., 1:]
    specular = light.specular_radiance(reflected, roughness[..., 0]) * spec_albedo
    diffuse = kd * (1 - metalness) * light.diffuse_radiance(n)
    if energy_conserving:
        diffuse = diffuse * (1 - spec_albedo)
    return occlusion * (diffuse + specular)


# -- colour transfer -----------------------------------------------------------------------------


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear RGB → sRGB-encoded values (IEC 61966-2-1), clamped to [0, 1]; finite gradients everywhere."""
    x = x.clamp(0.0, 1.0)
    curve = 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055
    return torch.where(x <= 0.0031308, 12.92 * x, curve).clamp(0.0, 1.0)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values → linear RGB, clamped to [0, 1]; inverse of :func:`linear_to_srgb`."""
    x = x.clamp(0.0, 1.0)
    curve = ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(x <= 0.04045, x / 12.92, curve).clamp(0.0, 1.0)
