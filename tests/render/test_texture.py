"""2-D texture and cube-map lookups: orientation conventions, filtering, wrapping, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from dyntet.render.texture import (cube_texel_solid_angles, cube_to_dirs, dirs_to_cube_coords, downsample_cube,
                                   sample_cube, sample_cube_mip, sample_texture)

# -- 2-D textures ------------------------------------------------------------------------------------


def numbered_texture(height: int, width: int) -> torch.Tensor:
    """float [H, W, 2] whose texel (i, j) holds (i, j)."""
    i, j = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([i, j], -1).float()


def texel_centre_uv(i: int, j: int, height: int, width: int) -> list[float]:
    return [(j + 0.5) / width, 1 - (i + 0.5) / height]


@pytest.mark.parametrize("filter", ["nearest", "bilinear"])
def test_texel_centres_return_their_texel_with_v_up(filter):
    tex = numbered_texture(4, 6)
    uv = torch.tensor([texel_centre_uv(i, j, 4, 6) for i in range(4) for j in range(6)])
    out = sample_texture(tex, uv, filter=filter)
    torch.testing.assert_close(out, tex.reshape(-1, 2))


def test_v_zero_is_the_bottom_row_and_u_zero_the_left_column():
    tex = numbered_texture(5, 3)
    out = sample_texture(tex, torch.tensor([[0.0, 0.0], [1.0, 1.0]]), filter="nearest")
    assert out[0].tolist() == [4.0, 0.0]      # bottom-left corner → last row, first column
    assert out[1].tolist() == [0.0, 2.0]      # top-right (clamped) → first row, last column


def test_bilinear_blends_neighbours_and_clamps_at_edges():
    tex = torch.tensor([[[0.0], [1.0]], [[2.0], [3.0]]])      # row 0 on top
    centre = sample_texture(tex, torch.tensor([[0.5, 0.5]]))
    torch.testing.assert_close(centre, torch.tensor([[1.5]]))
    # a quarter of the way from the left texel centre to the right one, on the top row (v = 0.75)
    quarter = sample_texture(tex, torch.tensor([[0.375, 0.75]]))
    torch.testing.assert_close(quarter, torch.tensor([[0.25]]))
    outside = sample_texture(tex, torch.tensor([[-3.0, 0.75], [0.01, 0.75]]))
    torch.testing.assert_close(outside, torch.tensor([[0.0], [0.0]]))


def test_repeat_wraps_and_blends_across_the_seam():
    tex = torch.tensor([[[0.0], [1.0], [2.0], [3.0]]])         # one row, four texels
    v = 0.5
    torch.testing.assert_close(sample_texture(tex, torch.tensor([[1.125, v]]), wrap="repeat"),
                               sample_texture(tex, torch.tensor([[0.125, v]]), wrap="repeat"))
    seam = sample_texture(tex, torch.tensor([[0.0, v], [1.0, v]]), wrap="repeat")
    torch.testing.assert_close(seam, torch.tensor([[1.5], [1.5]]))   # halfway between texels 3 and 0
    clamped = sample_texture(tex, torch.tensor([[0.0, v]]), wrap="clamp")
    torch.testing.assert_close(clamped, torch.tensor([[0.0]]))


def test_batched_textures_use_their_own_image():
    tex = torch.stack([torch.zeros(2, 2, 1), torch.ones(2, 2, 1)])
    uv = torch.rand(2, 3, 4, 2)
    out = sample_texture(tex, uv)
    assert out.shape == (2, 3, 4, 1)
    assert out[0].abs().max() == 0 and (out[1] == 1).all()


def test_gradients_with_respect_to_texture_and_uv():
    torch.manual_seed(0)
    tex = torch.rand(3, 5, 2, dtype=torch.float64, requires_grad=True)
    # keep away from texel-centre lines, where bilinear interpolation has a kink
    uv = (torch.rand(6, 2, dtype=torch.float64) * 0.7 + 0.13).requires_grad_()
    assert torch.autograd.gradcheck(lambda t, c: sample_texture(t, c), (tex, uv))
    assert torch.autograd.gradcheck(lambda t, c: sample_texture(t, c, wrap="repeat"), (tex, uv))


@pytest.mark.parametrize("bad", [dict(filter="cubic"), dict(wrap="mirror")])
def test_rejects_unknown_modes(bad):
    with pytest.raises(ValueError):
        sample_texture(torch.zeros(2, 2, 1), torch.zeros(1, 2), **bad)


def test_rejects_mismatched_batch():
    with pytest.raises(ValueError, match="same B"):
        sample_texture(torch.zeros(2, 4, 4, 3), torch.zeros(3, 5, 2))


# -- cube maps ---------------------------------------------------------------------------------------


def test_face_centres_follow_the_opengl_order():
    dirs = cube_to_dirs(2)
    centres = torch.nn.functional.normalize(dirs.mean(dim=(1, 2)), dim=-1)
    expected = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]).float()
    torch.testing.assert_close(centres, expected)


def test_face_orientation_matches_the_opengl_table():
    # OpenGL: on +X, s grows towards -Z and t towards -Y; on +Y, t grows towards +Z; on +Z, s grows towards +X.
    dirs = cube_to_dirs(8)
    px, py, pz = dirs[0], dirs[2], dirs[4]
    assert (px[:, -1, 2] < px[:, 0, 2]).all() and (px[-1, :, 1] < px[0, :, 1]).all()
    assert (py[-1, :, 2] > py[0, :, 2]).all() and (py[:, -1, 0] > py[:, 0, 0]).all()
    assert (pz[:, -1, 0] > pz[:, 0, 0]).all() and (pz[-1, :, 1] < pz[0, :, 1]).all()
    assert (py[0, :, 2] < 0).all()           # row 0 of +Y is the -Z edge, next to row 0 of +X/-X/+Z/-Z (up)


def test_texel_centre_directions_round_trip_to_the_same_texel():
    res = 7
    dirs = cube_to_dirs(res)
    face, s, t = dirs_to_cube_coords(dirs)
    f_idx = torch.arange(6)[:, None, None].expand(6, res, res)
    i_idx, j_idx = torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")
    assert torch.equal(face, f_idx)
    torch.testing.assert_close(s * res - 0.5, j_idx.float().expand(6, res, res), atol=1e-5, rtol=0)
    torch.testing.assert_close(t * res - 0.5, i_idx.float().expand(6, res, res), atol=1e-5, rtol=0)
    ids = torch.arange(6 * res * res, dtype=torch.float32).reshape(6, res, res, 1)
    torch.testing.assert_close(sample_cube(ids, dirs * 3.0), ids)   # unnormalised directions too


def test_solid_angles_cover_the_sphere_and_shrink_towards_corners():
    omega = cube_texel_solid_angles(16)
    assert math.isclose(float(omega.sum()), 4 * math.pi, rel_tol=1e-6)
    assert omega[0, 0, 0] < omega[0, 7, 7] / 3     # a corner texel subtends ~1/5 of a centre texel


def test_bilinear_cube_sampling_interpolates_within_a_face_and_clamps_at_edges():
    cube = torch.zeros(6, 2, 2, 1)
    cube[4, :, 1] = 1.0                             # +Z face: right column (towards +X) lit
    straight = sample_cube(cube, torch.tensor([[0.0, 0.0, 1.0]]))
    torch.testing.assert_close(straight, torch.tensor([[0.5]]))
    edge = sample_cube(cube, torch.tensor([[0.999, 0.0, 1.0]]))   # at the +X edge of the +Z face
    torch.testing.assert_close(edge, torch.tensor([[1.0]]))


def test_cube_sampling_gradients():
    torch.manual_seed(1)
    cube = torch.rand(6, 4, 4, 2, dtype=torch.float64, requires_grad=True)
    dirs = torch.tensor([[0.3, 0.2, 1.0], [-1.0, 0.35, 0.1], [0.1, -1.0, 0.4]], dtype=torch.float64,
                        requires_grad=True)
    assert torch.autograd.gradcheck(sample_cube, (cube, dirs))


def test_mip_sampling_blends_levels_linearly():
    mips = [torch.full((6, 8, 8, 3), 1.0), torch.full((6, 4, 4, 3), 3.0), torch.full((6, 2, 2, 3), 7.0)]
    dirs = torch.nn.functional.normalize(torch.randn(5, 3), dim=-1)
    level = torch.tensor([0.0, 0.5, 1.0, 1.75, 9.0])
    out = sample_cube_mip(mips, dirs, level)
    torch.testing.assert_close(out[:, 0], torch.tensor([1.0, 2.0, 3.0, 6.0, 7.0]))


def test_mip_sampling_at_integer_levels_equals_plain_sampling():
    torch.manual_seed(2)
    mips = [torch.rand(6, 8, 8, 3), torch.rand(6, 4, 4, 3)]
    dirs = torch.randn(10, 3)
    torch.testing.assert_close(sample_cube_mip(mips, dirs, torch.ones(10)), sample_cube(mips[1], dirs))
    level = torch.full((10,), 0.3, requires_grad=True)
    sample_cube_mip(mips, dirs, level).sum().backward()
    expected = (sample_cube(mips[1], dirs) - sample_cube(mips[0], dirs)).sum(-1)
    torch.testing.assert_close(level.grad, expected)


def test_downsample_keeps_the_integral_over_the_sphere():
    torch.manual_seed(3)
    cube = torch.rand(6, 8, 8, 3, dtype=torch.float64)
    small = downsample_cube(cube)
    integral = (cube * cube_texel_solid_angles(8, dtype=torch.float64)[..., None]).sum(dim=(0, 1, 2))
    small_integral = (small * cube_texel_solid_angles(4, dtype=torch.float64)[..., None]).sum(dim=(0, 1, 2))
    torch.testing.assert_close(small_integral, integral)


def test_cube_inputs_are_validated():
    with pytest.raises(ValueError, match=r"\[6, R, R, C\]"):
        sample_cube(torch.zeros(5, 4, 4, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="leading shape"):
        sample_cube_mip([torch.zeros(6, 2, 2, 1)], torch.ones(4, 3), torch.zeros(3))
