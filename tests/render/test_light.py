"""The learnable cube-map light: prefiltering against brute-force convolutions, diffuse SH, staleness,
regulariser and the equirectangular export for Blender."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dyntet.render.light import CubeMapLight, LightConfig, PrefilteredLight, equirect_dirs
from dyntet.render.texture import cube_texel_solid_angles, cube_to_dirs


def make_light(resolution: int, radiance: torch.Tensor | None = None, **kwargs) -> CubeMapLight:
    light = CubeMapLight(LightConfig(base_resolution=resolution, **kwargs))
    if radiance is not None:
        light.set_radiance_(radiance)
    return light


def blobs(resolution: int) -> torch.Tensor:
    """A smooth coloured sky: float [6, R, R, 3], two soft lights over a dim floor."""
    d = cube_to_dirs(resolution, dtype=torch.float64)

    def blob(centre, sharpness):
        c = torch.nn.functional.normalize(torch.tensor(centre, dtype=torch.float64), dim=0)
        return torch.exp(sharpness * (d @ c - 1))[..., None]

    return (0.2 + 5 * blob([0.3, 1, 0.2], 20) * torch.tensor([1, 0.8, 0.6], dtype=torch.float64)
            + 2 * blob([-1, 0, 0.5], 8) * torch.tensor([0.2, 0.4, 1], dtype=torch.float64))


def brute_force_specular(radiance: torch.Tensor, resolution: int, roughness: float) -> torch.Tensor:
    """∫ L(l) D(h) (n·l) dl / ∫ D(h) (n·l) dl with n = v = texel direction, summed over every source texel."""
    alpha2 = roughness ** 4
    src = radiance.shape[1]
    light_dirs = cube_to_dirs(src, dtype=torch.float64).reshape(-1, 3)
    omega = cube_texel_solid_angles(src, dtype=torch.float64).reshape(-1)
    normals = cube_to_dirs(resolution, dtype=torch.float64).reshape(-1, 3)
    n_dot_l = normals @ light_dirs.t()
    half = torch.nn.functional.normalize(normals[:, None] + light_dirs[None], dim=-1)
    n_dot_h = (half * normals[:, None]).sum(-1)
    d = alpha2 / (math.pi * (n_dot_h ** 2 * (alpha2 - 1) + 1) ** 2)
    weight = torch.where(n_dot_l > 0, d * n_dot_l * omega, torch.zeros(()))
    return ((weight @ radiance.reshape(-1, 3)) / weight.sum(1, keepdim=True)).reshape(resolution, -1)


# -- prefiltering -------------------------------------------------------------------------------------


def test_levels_halve_resolution_and_raise_roughness():
    cfg = LightConfig(base_resolution=64, min_resolution=16)
    assert cfg.specular_levels() == [(64, 0.08), (32, pytest.approx(0.29)), (16, 0.5), (16, 1.0)]
    assert LightConfig(base_resolution=16).specular_levels() == [(16, 0.08), (16, 1.0)]


def test_uniform_sky_stays_uniform():
    light = make_light(16, torch.full((6, 16, 16, 3), 2.5))
    built = light.build()
    for level in built.specular:
        torch.testing.assert_close(level, torch.full_like(level, 2.5), rtol=1e-5, atol=0)
    normals = torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    torch.testing.assert_close(built.diffuse_radiance(normals), torch.full((50, 3), 2.5), rtol=1e-4, atol=0)


def test_prefiltered_levels_match_a_brute_force_ggx_convolution():
    """Each level against the exact convolution of the same map. The estimator reads box-filtered mips
    with a fixed sample set, so it is not exact: we allow 5 % of the peak radiance anywhere and 2 % of the
    mean on average (measured: ≤ 3 % and ≤ 1 %)."""
    radiance = blobs(16)
    light = make_light(16, radiance.float(), min_resolution=4).double()
    built = light.build()
    assert built.roughness.tolist() == pytest.approx([0.08, 0.29, 0.5, 1.0])
    for level, roughness in zip(built.specular, built.roughness.tolist()):
        expected = brute_force_specular(radiance, level.shape[1], roughness)
        error = (level.reshape(level.shape[1], -1) - expected).abs()
        assert error.max() <= 0.05 * expected.max(), roughness
        assert error.mean() <= 0.02 * expected.mean(), roughness


def test_operator_and_direct_prefilter_agree():
    torch.manual_seed(0)
    radiance = torch.rand(6, 16, 16, 3, dtype=torch.float64) * 3
    fast = make_light(16, radiance, min_resolution=8, prefilter="operator").double().build()
    slow = make_light(16, radiance, min_resolution=8, prefilter="direct").double().build()
    for a, b in zip(fast.specular, slow.specular):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_highlight_widens_monotonically_with_roughness():
    res = 32
    dirs = cube_to_dirs(res)
    radiance = torch.full((6, res, res, 3), 0.01)
    radiance[dirs @ torch.tensor([0.0, 1.0, 0.0]) > math.cos(math.radians(3))] = 100.0   # a small sun at +Y
    built = make_light(res, radiance, min_resolution=8).build()
    angles = torch.linspace(0, math.pi / 2, 721)
    sweep = torch.stack([0.6 * angles.sin(), angles.cos(), 0.8 * angles.sin()], -1)   # away from the sun
    widths = []
    for roughness in [0.08, 0.15, 0.22, 0.3, 0.36, 0.45, 0.5, 0.7, 1.0]:
        profile = built.specular_radiance(sweep, torch.full((721,), roughness))[:, 0]
        assert profile[0] >= 0.98 * profile.max()             # centred on the sun (up to texel discretisation)
        below_half = (profile < (profile.max() + profile[-1]) / 2).nonzero()
        widths.append(float(angles[below_half[0]]))
    assert all(a <= b for a, b in zip(widths, widths[1:])), widths
    at_levels = [widths[i] for i in (0, 2, 4, 6, 8)]          # roughness of the levels themselves
    assert all(a < b for a, b in zip(at_levels, at_levels[1:])), at_levels


def test_build_is_differentiable_with_respect_to_the_map():
    light = make_light(16)
    built = light.build()
    loss = sum(level.sum() for level in built.specular) + built.diffuse_radiance(torch.tensor([[0.0, 1.0, 0.0]])).sum()
    loss.backward()
    grad = light.log_radiance.grad
    assert grad is not None and (grad > 0).all()              # every texel feeds some level


# -- diffuse ----------------------------------------------------------------------------------------------


def test_diffuse_of_a_hemisphere_sky_is_half_cosine():
    res = 16
    dirs = cube_to_dirs(res)
    sky = (dirs[..., 1:2] > 0).float().expand(6, res, res, 3)
    built = make_light(res, sky).build()
    normals = torch.nn.functional.normalize(torch.randn(200, 3), dim=-1)
    expected = (1 + normals[:, 1:2]) / 2                       # E(n)/π of a bright upper hemisphere
    torch.testing.assert_close(built.diffuse_radiance(normals), expected.expand(200, 3), atol=2e-3, rtol=0)


def test_diffuse_matches_a_cosine_convolution_within_the_sh_order_2_error():
    """Order-2 spherical harmonics approximate irradiance to a few percent (Ramamoorthi & Hanrahan 2001);
    for this sky with a strong 5× light we allow 3 % mean and 8 % max error relative to the mean."""
    res = 16
    radiance = blobs(res).float()
    built = make_light(res, radiance).build()
    normals = torch.nn.functional.normalize(torch.randn(400, 3), dim=-1)
    dirs = cube_to_dirs(res).reshape(-1, 3)
    omega = cube_texel_solid_angles(res).reshape(-1)
    exact = ((normals @ dirs.t()).clamp_min(0) * omega) @ radiance.reshape(-1, 3) / math.pi
    error = (built.diffuse_radiance(normals) - exact).abs()
    assert error.mean() <= 0.03 * exact.mean()
    assert error.max() <= 0.08 * exact.mean()


# -- state -----------------------------------------------------------------------------------------------


def test_prefiltered_refuses_missing_and_stale_builds():
    light = make_light(8, min_resolution=8)
    with pytest.raises(RuntimeError, match="build"):
        light.prefiltered
    built = light.build()
    assert light.prefiltered is built
    optimizer = torch.optim.SGD(light.parameters(), lr=0.1)
    sum(level.sum() for level in built.specular).backward()
    optimizer.step()
    with pytest.raises(RuntimeError, match="changed since"):
        light.prefiltered
    assert isinstance(light.build(), PrefilteredLight) and light.prefiltered is not built
    light.double()                                            # a new storage is a new map too
    with pytest.raises(RuntimeError, match="changed since"):
        light.prefiltered


def test_radiance_stays_positive_under_any_update():
    light = make_light(4, min_resolution=4)
    with torch.no_grad():
        light.log_radiance.sub_(50.0)
    assert (light.radiance() > 0).all()


def test_set_radiance_validates_shape():
    with pytest.raises(ValueError, match="shape"):
        make_light(8).set_radiance_(torch.ones(6, 4, 4, 3))


@pytest.mark.parametrize("kwargs", [dict(base_resolution=48), dict(min_roughness=0.6), dict(init_scale=0.0),
                                    dict(specular_samples=0), dict(prefilter="fast")])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="LightConfig"):
        LightConfig(**kwargs)


def test_regulariser_penalises_colour_not_brightness():
    res = 8
    dirs = cube_to_dirs(res)
    grey = (1 + 4 * dirs[..., 1:2].clamp_min(0)).expand(6, res, res, 3)
    light = make_light(res, grey, min_resolution=8)
    assert light.regulariser().item() == pytest.approx(0.0, abs=1e-6)
    tinted = grey * torch.tensor([1.0, 0.5, 0.25])
    light.set_radiance_(tinted)
    value = light.regulariser()
    assert value > 0.1
    value.backward()
    assert light.log_radiance.grad.abs().sum() > 0


# -- export -----------------------------------------------------------------------------------------------


def test_equirect_directions_follow_blenders_layout():
    dirs = equirect_dirs(4)                                    # [4, 8, 3] in head space
    assert dirs.shape == (4, 8, 3)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(4, 8))
    assert (dirs[0, :, 1] > 0.9).all() and (dirs[-1, :, 1] < -0.9).all()     # top row: head +Y (up)
    horizon = equirect_dirs(64)[32]                                            # just below the horizon
    w = horizon.shape[0]
    assert horizon[w // 2, 0] > 0.99                                           # centre: head +X
    assert horizon[3 * w // 4, 2] > 0.99                                       # 3/4: head +Z, the face's front
    assert horizon[w // 4, 2] < -0.99                                          # 1/4: behind the head


def test_to_equirect_samples_the_radiance():
    res = 8
    dirs = cube_to_dirs(res)
    sky = torch.where(dirs[..., 2:3] > 0, torch.tensor([4.0, 2.0, 1.0]), torch.tensor([0.5, 0.5, 0.5]))
    image = make_light(res, sky, min_resolution=8).to_equirect(16)
    assert image.shape == (16, 32, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image[8, 24], [4.0, 2.0, 1.0], rtol=1e-5)      # front of the face
    np.testing.assert_allclose(image[8, 8], [0.5, 0.5, 0.5], rtol=1e-5)       # behind the head
    with pytest.raises(ValueError):
        make_light(res).to_equirect(0)


def test_equirect_reaches_blender_facing_the_right_way(tmp_path):
    """Write the map as .hdr, light a Cycles World with it, look along Blender −Y (head +Z): red."""
    bpy = pytest.importorskip("bpy")
    from dyntet.formats.hdr import write_hdr

    res = 8
    dirs = cube_to_dirs(res)
    sky = torch.where(dirs[..., 2:3] > 0.7, torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]))
    path = tmp_path / "env.hdr"
    write_hdr(path, make_light(res, sky, min_resolution=8).to_equirect(32))

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = 4
    scene.view_settings.view_transform = "Standard"
    world = bpy.data.worlds.new("env")                       # Blender 5 worlds come with a node tree
    scene.world = world
    env = world.node_tree.nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(path))
    world.node_tree.links.new(env.outputs["Color"], world.node_tree.nodes["Background"].inputs["Color"])
    camera = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    camera.data.angle = math.radians(2)
    scene.collection.objects.link(camera)
    scene.camera = camera
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.filepath = str(tmp_path / "look.exr")
    colours = {}
    for name, euler in {"+Y": (math.pi / 2, 0, 0), "-Y": (math.pi / 2, 0, math.pi)}.items():
        camera.rotation_euler = euler                        # the camera's −Z turned to Blender +Y / −Y
        bpy.ops.render.render(write_still=True)
        image = bpy.data.images.load(scene.render.filepath)
        colours[name] = np.array(image.pixels[:]).reshape(4, 4, 4)[1:3, 1:3, :3].mean(axis=(0, 1))
        bpy.data.images.remove(image)
    assert colours["-Y"][0] > 0.9 and colours["-Y"][2] < 0.1, colours   # the face's front is red
    assert colours["+Y"][2] > 0.9 and colours["+Y"][0] < 0.1, colours
