"""Split-sum PBR shading: furnace tests, Fresnel colours, highlight width, the BRDF table and its cache."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from dyntet.render import pbr
from dyntet.render.light import CubeMapLight, LightConfig
from dyntet.render.pbr import fg_lut, linear_to_srgb, shade, srgb_to_linear, view_directions
from dyntet.render.texture import cube_to_dirs


def uniform_light(value: float = 1.0, resolution: int = 8) -> CubeMapLight:
    light = CubeMapLight(LightConfig(base_resolution=resolution, min_resolution=resolution))
    light.set_radiance_(torch.full((6, resolution, resolution, 3), value))
    light.build()
    return light


def tilted_view(n_dot_v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normals +Y and unit view directions at the given cosines, float [N, 3] each."""
    sin = (1 - n_dot_v ** 2).sqrt()
    normals = torch.tensor([0.0, 1.0, 0.0]).expand(len(n_dot_v), 3)
    return normals, torch.stack([sin, n_dot_v, torch.zeros_like(sin)], -1)


def directional_albedo(n_dot_v: float, roughness: float, f0: float, steps: int = 700) -> float:
    """∫ f_GGX(v, l) (n·l) dl by a midpoint rule over the hemisphere — independent of the LUT's sampling."""
    alpha2 = roughness ** 4
    theta = (np.arange(steps) + 0.5) / steps * np.pi / 2
    phi = (np.arange(2 * steps) + 0.5) / (2 * steps) * 2 * np.pi
    t, p = np.meshgrid(theta, phi, indexing="ij")
    light = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1)
    view = np.array([math.sqrt(1 - n_dot_v ** 2), 0.0, n_dot_v])
    half = light + view
    half /= np.linalg.norm(half, axis=-1, keepdims=True)
    n_dot_h, v_dot_h, n_dot_l = half[..., 2], half @ view, light[..., 2]
    d = alpha2 / (np.pi * (n_dot_h ** 2 * (alpha2 - 1) + 1) ** 2)

    def smith_lambda(c):
        return 0.5 * (np.sqrt(1 + alpha2 * (1 - c * c) / (c * c)) - 1)

    g = 1 / (1 + smith_lambda(n_dot_v) + smith_lambda(n_dot_l))
    fresnel = f0 + (1 - f0) * (1 - v_dot_h) ** 5
    brdf = d * g * fresnel / (4 * n_dot_v * n_dot_l)
    return float((brdf * n_dot_l * np.sin(t)).sum() * (np.pi / 2 / steps) * (np.pi / steps))


# -- furnace tests ------------------------------------------------------------------------------------

GRID_NV = torch.tensor([0.05, 0.2, 0.5, 0.8, 1.0])
GRID_R = [0.05, 0.1, 0.3, 0.5, 0.8, 1.0]


def test_white_dielectric_furnace_is_one_everywhere():
    """Uniform white sky, kd = 1, dielectric, no occlusion: the energy-conserving split sum returns exactly
    the incoming radiance (specular albedo S plus diffuse 1 − S); only float error remains."""
    light = uniform_light()
    for roughness in GRID_R:
        normals, view = tilted_view(GRID_NV)
        orm = torch.tensor([1.0, roughness, 0.0]).expand(len(GRID_NV), 3)
        rgb = shade(normals, view, torch.ones(len(GRID_NV), 3), orm, light)
        torch.testing.assert_close(rgb, torch.ones_like(rgb), atol=1e-4, rtol=0)


@pytest.mark.parametrize("n_dot_v,roughness", [(0.2, 0.3), (0.5, 0.6), (0.9, 1.0), (0.35, 0.45)])
def test_paper_mode_furnace_adds_the_specular_albedo(n_dot_v, roughness):
    """Without energy conservation (paper Eq. 11) a white dielectric reflects 1 + its specular albedo; the
    albedo is checked against an independent quadrature (LUT sampling and interpolation error ≤ 0.01)."""
    light = uniform_light()
    normals, view = tilted_view(torch.tensor([n_dot_v]))
    orm = torch.tensor([[1.0, roughness, 0.0]])
    rgb = shade(normals, view, torch.ones(1, 3), orm, light, energy_conserving=False)
    expected = 1 + directional_albedo(n_dot_v, roughness, 0.04)
    assert rgb[0].tolist() == pytest.approx([expected] * 3, abs=0.01)


@pytest.mark.parametrize("n_dot_v,roughness", [(0.2, 0.3), (0.5, 0.6), (0.9, 1.0), (0.1, 1.0)])
def test_white_metal_furnace_loses_only_the_single_scattering_energy(n_dot_v, roughness):
    light = uniform_light()
    normals, view = tilted_view(torch.tensor([n_dot_v]))
    rgb = shade(normals, view, torch.ones(1, 3), torch.tensor([[1.0, roughness, 1.0]]), light)
    expected = directional_albedo(n_dot_v, roughness, 1.0)
    assert expected <= 1.0
    assert rgb[0].tolist() == pytest.approx([expected] * 3, abs=0.01)


# -- Fresnel colours ------------------------------------------------------------------------------------


def test_black_dielectric_reflects_four_percent_grey_at_normal_incidence():
    light = uniform_light()
    normals, view = tilted_view(torch.tensor([1.0]))
    rgb = shade(normals, view, torch.zeros(1, 3), torch.tensor([[1.0, 0.1, 0.0]]), light)
    assert rgb[0].tolist() == pytest.approx([0.04] * 3, abs=0.002)


def test_metal_reflects_its_base_colour_at_normal_incidence():
    light = uniform_light(2.0)
    normals, view = tilted_view(torch.tensor([1.0]))
    kd = torch.tensor([[0.9, 0.6, 0.2]])
    rgb = shade(normals, view, kd, torch.tensor([[1.0, 0.1, 1.0]]), light)
    torch.testing.assert_close(rgb, 2.0 * kd, atol=0.02, rtol=0)


def test_fresnel_brightens_grazing_dielectric_reflection():
    light = uniform_light()
    normals, view = tilted_view(torch.tensor([1.0, 0.5, 0.1]))
    rgb = shade(normals, view, torch.zeros(3, 3), torch.tensor([[1.0, 0.2, 0.0]]).expand(3, 3), light)
    assert rgb[0, 0] < rgb[1, 0] < rgb[2, 0]


def test_occlusion_scales_diffuse_and_specular_alike():
    light = uniform_light(3.0)
    normals, view = tilted_view(torch.tensor([0.7, 0.3]))
    kd = torch.tensor([[0.5, 0.4, 0.3], [0.2, 0.8, 0.1]])
    full = shade(normals, view, kd, torch.tensor([[1.0, 0.4, 0.3]]).expand(2, 3), light)
    half = shade(normals, view, kd, torch.tensor([[0.5, 0.4, 0.3]]).expand(2, 3), light)
    torch.testing.assert_close(half, 0.5 * full)


# -- highlight ------------------------------------------------------------------------------------------


def test_highlight_width_grows_with_roughness():
    res = 32
    dirs = cube_to_dirs(res)
    radiance = torch.full((6, res, res, 3), 0.01)
    radiance[dirs @ torch.tensor([0.0, 1.0, 0.0]) > math.cos(math.radians(4))] = 200.0   # a sun at +Y
    light = CubeMapLight(LightConfig(base_resolution=res, min_resolution=8))
    light.set_radiance_(radiance)
    light.build()
    # viewer along +Y looks at a surface whose normal tilts by φ: the mirror direction tilts by 2φ
    tilt = torch.linspace(0, math.pi / 4, 361)
    normals = torch.stack([tilt.sin(), tilt.cos(), torch.zeros_like(tilt)], -1)
    view = torch.tensor([0.0, 1.0, 0.0]).expand(361, 3)
    widths = []
    for roughness in [0.08, 0.2, 0.29, 0.4, 0.5, 0.75, 1.0]:
        orm = torch.tensor([1.0, roughness, 1.0]).expand(361, 3)
        profile = shade(normals, view, torch.ones(361, 3), orm, light)[:, 0]
        below_half = (profile < (profile.max() + profile[-1]) / 2).nonzero()
        widths.append(float(tilt[below_half[0]]))
    assert all(a <= b for a, b in zip(widths, widths[1:])), widths
    assert widths[-1] > 4 * widths[0], widths


# -- gradients and validation -------------------------------------------------------------------------


def test_shade_is_differentiable_in_every_input():
    torch.manual_seed(0)
    res = 8
    light = CubeMapLight(LightConfig(base_resolution=res, min_resolution=res))
    normals = torch.nn.functional.normalize(torch.randn(20, 3), dim=-1).requires_grad_()
    view = torch.nn.functional.normalize(normals.detach() + 0.3 * torch.randn(20, 3), dim=-1)
    kd = torch.rand(20, 3, requires_grad=True)
    orm = (torch.rand(20, 3) * 0.8 + 0.1).requires_grad_()
    shade(normals, view, kd, orm, light.build()).sum().backward()
    for t in (normals, kd, orm, light.log_radiance):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_shade_validates_its_inputs():
    light = uniform_light()
    good = torch.ones(4, 3)
    with pytest.raises(ValueError, match="kd"):
        shade(good, good, torch.ones(4, 2), good, light)
    with pytest.raises(TypeError, match="CubeMapLight"):
        shade(good, good, good, good, "sky")
    with pytest.raises(RuntimeError, match="build"):
        shade(good, good, good, good, CubeMapLight(LightConfig(base_resolution=4, min_resolution=4)))


def test_shade_accepts_no_points():
    empty = torch.zeros(0, 3)
    assert shade(empty, empty, empty, empty, uniform_light()).shape == (0, 3)


def test_view_directions_point_at_the_camera():
    points = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    dirs = view_directions(points, torch.tensor([0.0, 0.0, 2.0]))
    torch.testing.assert_close(dirs, torch.tensor([[0.0, 0.0, 1.0], [-1 / math.sqrt(5), 0.0, 2 / math.sqrt(5)]]))


# -- the BRDF table -----------------------------------------------------------------------------------


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty on-disk and in-memory LUT cache."""
    monkeypatch.setenv("DYNTET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(pbr, "_lut_memory", {})
    return tmp_path / "cache"


def test_lut_values_are_in_range_with_known_corners(fresh_cache):
    lut = fg_lut(32, 128).numpy()
    assert lut.shape == (32, 32, 2) and lut.dtype == np.float32
    assert lut.min() >= 0 and (lut.sum(-1) <= 1.0 + 2e-3).all()
    a, b = lut[-1, -1]                                 # smooth, normal incidence: F0 reflected unchanged
    assert a == pytest.approx(1.0, abs=0.01) and b == pytest.approx(0.0, abs=0.01)
    assert lut[-1, 0, 1] > 0.9                          # smooth, grazing: Fresnel → 1
    assert (np.diff(lut[:, -1].sum(-1)) >= -1e-3).all()  # at normal incidence, rougher loses energy


@pytest.mark.parametrize("n_dot_v,roughness", [(0.2, 0.3), (0.6, 0.55), (0.05, 0.9)])
def test_lut_matches_an_independent_quadrature(fresh_cache, n_dot_v, roughness):
    lut = fg_lut(64, 512)
    ab = pbr.sample_texture(lut, torch.tensor([[n_dot_v, roughness]]))[0].tolist()
    a_plus_b = directional_albedo(n_dot_v, roughness, 1.0)
    b = directional_albedo(n_dot_v, roughness, 0.0)
    assert ab == pytest.approx([a_plus_b - b, b], abs=0.01)


def test_lut_cache_round_trip(fresh_cache, monkeypatch):
    first = fg_lut(16, 32)
    files = list(fresh_cache.glob("fg_lut_*.npy"))
    assert len(files) == 1 and not list(fresh_cache.glob("*.tmp"))
    np.testing.assert_array_equal(np.load(files[0]), first.numpy())
    monkeypatch.setattr(pbr, "_lut_memory", {})

    def no_compute(*args):
        raise AssertionError("the cached table should have been loaded, not recomputed")

    monkeypatch.setattr(pbr, "compute_fg_lut", no_compute)
    torch.testing.assert_close(fg_lut(16, 32), first)


def test_corrupt_lut_cache_is_rebuilt(fresh_cache, caplog):
    table = fg_lut(16, 32)
    path = next(fresh_cache.glob("fg_lut_*.npy"))
    pbr._lut_memory.clear()
    path.write_bytes(b"not an npy file")
    with caplog.at_level(logging.WARNING, logger="dyntet.render.pbr"):
        rebuilt = fg_lut(16, 32)
    assert "recomputing" in caplog.text
    torch.testing.assert_close(rebuilt, table)
    np.testing.assert_array_equal(np.load(path), table.numpy())
    pbr._lut_memory.clear()
    np.save(path, np.full((16, 16, 2), 7.0, dtype=np.float32))   # readable but implausible
    torch.testing.assert_close(fg_lut(16, 32), table)


def test_unwritable_cache_still_returns_the_table(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("DYNTET_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(pbr, "_lut_memory", {})
    assert fg_lut(8, 16).shape == (8, 8, 2)


def test_lut_rejects_bad_sizes():
    with pytest.raises(ValueError):
        fg_lut(1)
    with pytest.raises(ValueError):
        fg_lut(8, 0)


# -- sRGB ------------------------------------------------------------------------------------------------


def test_srgb_known_values_and_round_trip():
    linear = torch.tensor([0.0, 0.001, 0.0031308, 0.18, 0.5, 1.0])
    encoded = linear_to_srgb(linear)
    torch.testing.assert_close(encoded[[0, 3, 4, 5]], torch.tensor([0.0, 0.4613561, 0.7353570, 1.0]), atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(encoded[1], torch.tensor(0.01292))
    torch.testing.assert_close(srgb_to_linear(encoded), linear, atol=1e-6, rtol=1e-5)


def test_srgb_clamps_and_keeps_gradients_finite():
    x = torch.tensor([-0.5, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    y = linear_to_srgb(x)
    assert y.min() == 0 and y.max().item() == pytest.approx(1.0, abs=1e-6)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    z = torch.tensor([0.0, 0.02, 0.5, 1.5], requires_grad=True)
    srgb_to_linear(z).sum().backward()
    assert torch.isfinite(z.grad).all()
