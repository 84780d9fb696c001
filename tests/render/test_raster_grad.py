"""Gradients of rasterize and interpolate against finite differences (float64)."""

from __future__ import annotations

import pytest
import torch

from dyntet.render.raster import interpolate, rasterize

SIZE = (9, 11)


def overlapping_triangles() -> tuple[torch.Tensor, torch.Tensor]:
    """Three overlapping perspective triangles (float64 clip [9, 4]) covering part of a small image."""
    gen = torch.Generator().manual_seed(9)
    w = 0.6 + 1.4 * torch.rand(9, 1, dtype=torch.float64, generator=gen)
    xy = (torch.rand(9, 2, dtype=torch.float64, generator=gen) * 2.4 - 1.2) * w
    z = (torch.rand(9, 1, dtype=torch.float64, generator=gen) * 1.6 - 0.8) * w
    return torch.cat([xy, z, w], 1), torch.arange(9).reshape(3, 3)


def test_scene_is_not_trivial():
    clip, tris = overlapping_triangles()
    ids = rasterize(clip, tris, SIZE, backend="cpu")[0, ..., 3]
    assert set(ids.unique().tolist()) == {0.0, 1.0, 2.0, 3.0}


def test_barycentrics_and_depth_gradients():
    clip, tris = overlapping_triangles()
    clip.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: rasterize(c, tris, SIZE, backend="cpu")[..., :3], (clip,),
                                    eps=1e-6, atol=1e-6, rtol=1e-4)


def test_interpolate_gradients_wrt_attributes_and_clip_positions():
    clip, tris = overlapping_triangles()
    attr = torch.randn(9, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    clip.requires_grad_(True)
    attr.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, c: interpolate(a, rasterize(c, tris, SIZE, backend="cpu"), tris),
                                    (attr, clip), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("batched_attr", [False, True])
def test_interpolate_gradients_in_a_batch(batched_attr):
    clip, tris = overlapping_triangles()
    clips = torch.stack([clip, clip.flip(0)]).requires_grad_(True)
    shape = (2, 9, 1) if batched_attr else (9, 1)
    attr = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, c: interpolate(a, rasterize(c, tris, SIZE, backend="cpu"), tris),
                                    (attr, clips), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_depth_gradient_has_the_analytic_value():
    # a fronto-parallel triangle at depth d: z/w = (a·d + b) / d for the projection's (a, b), so
    # d(z/w)/d(d) = -b / d²; moving the vertices together must give exactly that
    a, b = -1.2, -0.44
    depth = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    xy = torch.tensor([[-0.8, -0.8], [0.9, -0.7], [0.0, 0.9]], dtype=torch.float64)
    ones = torch.ones(3, 1, dtype=torch.float64)
    clip = torch.cat([xy * depth, (a * -depth + b) * ones, depth * ones], 1)
    rast = rasterize(clip, torch.tensor([[0, 1, 2]]), (5, 5), backend="cpu")
    covered = rast[..., 3] > 0
    zw = rast[..., 2][covered]
    (grad_zw,) = torch.autograd.grad(zw.sum(), depth, retain_graph=True)
    expected = int(covered.sum()) * -b / depth.item() ** 2
    assert grad_zw.item() == pytest.approx(expected, rel=1e-9)
    # u, v do not change when x, y and w scale together
    (grad_uv,) = torch.autograd.grad(rast[..., :2].sum(), depth)
    assert abs(grad_uv.item()) < 1e-9
