"""Antialiasing: exact edge coverage, what is left alone, gradients (finite differences), input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dyntet.render.raster import antialias, available_backends, build_topology, interpolate, rasterize

BACKENDS = available_backends()


def half_plane(x0: float, slope: float, transpose: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A big quad covering NDC x < x0 + slope·y (or y < x0 + slope·x when ``transpose``), z/w = 0."""
    far = 4.0
    pts = [(-far, -far), (x0 - slope * far, -far), (x0 + slope * far, far), (-far, far)]
    xy = torch.tensor(pts, dtype=torch.float64)
    if transpose:
        xy = xy.flip(-1)
    clip = torch.cat([xy, torch.zeros(4, 1, dtype=torch.float64), torch.ones(4, 1, dtype=torch.float64)], 1)
    return clip, torch.tensor([[0, 1, 2], [0, 2, 3]])


def render_mask(clip: torch.Tensor, tris: torch.Tensor, size: tuple[int, int], backend: str = "cpu",
                topology=None) -> torch.Tensor:
    rast = rasterize(clip, tris, size, backend=backend)
    mask = (rast[..., 3:] > 0).to(clip.dtype)
    return antialias(mask, rast, clip, tris, topology=topology, backend=backend)[0, ..., 0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("slope", [0.0, 0.37, -0.81, 0.999])
@pytest.mark.parametrize("transpose", [False, True])
def test_straight_edge_coverage_is_exact(backend, slope, transpose):
    # The antialiased mask of a half-plane must hold, row by row (column by column for a mostly
    # horizontal edge), exactly the covered length at the row's centre line: the area of the
    # half-plane inside the row, because the edge is straight.
    height, width = 12, 20
    ndc_slope = slope * height / width  # ``slope`` is in pixels per pixel
    for x0 in (-0.213, 0.1234, 0.3771):
        clip, tris = half_plane(x0, ndc_slope, transpose)
        mask = render_mask(clip, tris, (width, height) if transpose else (height, width), backend)
        mask = mask.T if transpose else mask
        centres = (torch.arange(height, dtype=torch.float64) + 0.5) / height * 2 - 1
        expected = (x0 + ndc_slope * centres + 1) / 2 * width  # covered pixels per row
        tol = 1e-9 if backend == "cpu" else 0.05  # nvdiffrast: unverified here, allow its own blending rule
        torch.testing.assert_close(mask.sum(1), expected, atol=tol, rtol=0)
        assert ((mask > 0) & (mask < 1)).any(), "expected partially covered pixels"


def test_interior_edges_and_flat_regions_are_left_alone():
    # two triangles of one quad with different colours: their shared diagonal is not a silhouette,
    # so nothing along it changes; only the outline of the quad is blended
    clip = torch.tensor([[-0.61, -0.53, 0, 1], [0.57, -0.61, 0, 1], [0.63, 0.59, 0, 1], [-0.55, 0.62, 0, 1]])
    tris = torch.tensor([[0, 1, 2], [0, 2, 3]])
    rast = rasterize(clip, tris, (16, 16), backend="cpu")
    color = torch.stack([rast[..., 3] == 1, rast[..., 3] == 2, rast[..., 3] == 0], -1).float()
    out = antialias(color, rast, clip, tris)
    changed = (out != color).any(-1)[0]
    inside = (rast[0, ..., 3] > 0)
    # changed pixels lie next to the outline (a pixel whose 4-neighbourhood contains background)
    padded = torch.nn.functional.pad(inside[None, None].float(), (1, 1, 1, 1), value=0)[0, 0] > 0
    near_outline = ~(padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & inside)
    assert changed.any()
    assert not (changed & ~near_outline).any(), "blending happened away from the silhouette"
    torch.testing.assert_close(out.sum(-1), torch.ones(1, 16, 16))  # convex blends of one-hot colours


def test_occlusion_boundary_blends_towards_the_front_surface():
    # a small quad in front of a large one: the boundary between them is the front quad's outline;
    # blending there mixes the two colours and keeps every pixel a convex mix
    quad = torch.tensor([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=torch.float64)
    back = torch.cat([quad * 2, torch.full((4, 1), 0.5, dtype=torch.float64), torch.ones(4, 1, dtype=torch.float64)], 1)
    front = torch.cat([quad * 0.43 + 0.05, torch.full((4, 1), -0.5, dtype=torch.float64),
                       torch.ones(4, 1, dtype=torch.float64)], 1)
    clip = torch.cat([back, front])
    tris = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    rast = rasterize(clip, tris, (20, 20), backend="cpu")
    is_front = (rast[..., 3:] > 2).double()
    out = antialias(is_front, rast, clip, tris)
    area = (0.86 / 2 * 20) ** 2  # the front quad's area in pixels
    assert abs(out.sum().item() - area) < 0.5, "coverage of an axis-aligned square must be near exact"
    assert out.min() >= 0 and out.max() <= 1


def octahedron_scene() -> tuple[torch.Tensor, torch.Tensor]:
    """A rotated octahedron seen in perspective in front of a background quad (float64 clip, tris)."""
    verts = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=torch.float64)
    tris = [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
    a, b = 0.5, 0.3
    rot = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], dtype=torch.float64)
    rot = rot @ torch.tensor([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]],
                             dtype=torch.float64)
    pts = verts @ rot.T * 0.6 + torch.tensor([0.07, -0.05, 3.0], dtype=torch.float64)
    bg = torch.tensor([[-9, -9, 5], [9, -9, 5], [9, 9, 5], [-9, 9, 5]], dtype=torch.float64)
    pts = torch.cat([pts, bg])
    tris += [[6, 7, 8], [6, 8, 9]]
    w = pts[:, 2:]
    # focal length 3.5 (NDC units); z/w runs over (-1, 1) for depths in [1, 5]
    clip = torch.cat([3.5 * pts[:, :2], (pts[:, 2:] - 1.0) / 4.0 * w, w], 1)
    return clip, torch.tensor(tris)


def test_antialias_gradients_match_finite_differences():
    clip, tris = octahedron_scene()
    size = (12, 14)
    rast = rasterize(clip, tris, size, backend="cpu")
    topology = build_topology(tris)
    color = torch.rand(1, *size, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = antialias(color, rast, clip, tris, topology=topology)
    assert (out != color).any(-1).sum() >= 10, "scene has too few silhouette pixels to test anything"
    clip.requires_grad_(True)
    color.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: antialias(color.detach(), rast, p, tris, topology=topology),
                                    (clip,), eps=1e-6, atol=1e-6, rtol=1e-4)
    # linear in the colour: random directional derivatives suffice
    assert torch.autograd.gradcheck(lambda c, p: antialias(c, rast, p, tris, topology=topology),
                                    (color, clip), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)
    antialias(color, rast, clip, tris, topology=topology).sum().backward()
    assert clip.grad[:6].abs().sum() > 0, "silhouette vertices got no gradient"
    assert clip.grad[6:].abs().sum() == 0, "the background quad has no silhouette inside the image"


def test_mask_area_gradient_is_the_edge_length():
    # moving a vertical edge right by one pixel adds one pixel per row to the antialiased mask
    height, width = 10, 16
    shift = torch.zeros((), dtype=torch.float64, requires_grad=True)
    clip, tris = half_plane(0.1234, 0.0)
    moved = clip.clone()
    moved[[1, 2], 0] = moved[[1, 2], 0] + shift * (2 / width)  # shift in pixels
    render_mask(moved, tris, (height, width)).sum().backward()
    assert shift.grad.item() == pytest.approx(height, abs=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batched_antialias_matches_single_images(backend):
    clip, tris = octahedron_scene()
    clips = torch.stack([clip, clip * torch.tensor([1.1, 0.9, 1, 1], dtype=torch.float64)])
    rast = rasterize(clips, tris, (10, 12), backend=backend)
    color = torch.rand(2, 10, 12, 3, dtype=torch.float64)
    out = antialias(color, rast, clips, tris, backend=backend)
    for i in range(2):
        single = antialias(color[i:i + 1], rast[i:i + 1], clips[i], tris, backend=backend)
        torch.testing.assert_close(out[i:i + 1], single)


def test_antialias_skips_triangles_behind_the_camera_and_empty_meshes():
    clip = torch.tensor([[-0.5, -0.5, 0.2, 1], [0.5, -0.5, 0.2, 1], [0.1, 0.8, 0.2, -0.5]], requires_grad=True)
    tris = torch.tensor([[0, 1, 2]])
    rast = rasterize(clip, tris, (16, 16), backend="cpu")
    color = (rast[..., 3:] > 0).float()
    out = antialias(color, rast, clip, tris)
    torch.testing.assert_close(out, color)  # a triangle crossing the camera plane is never blended
    empty = torch.zeros((0, 3), dtype=torch.int64)
    rast = rasterize(torch.zeros(1, 4), empty, (4, 4), backend="cpu")
    color = torch.rand(1, 4, 4, 3)
    torch.testing.assert_close(antialias(color, rast, torch.zeros(1, 4), empty), color)


def test_antialias_rejects_bad_input():
    clip, tris = half_plane(0.0, 0.0)
    rast = rasterize(clip, tris, (4, 4), backend="cpu")
    with pytest.raises(ValueError, match="color must be"):
        antialias(torch.zeros(1, 4, 5, 3), rast, clip, tris)
    with pytest.raises(ValueError, match="topology was built for"):
        antialias(torch.zeros(1, 4, 4, 3), rast, clip, tris, topology=build_topology(tris[:1]))
    with pytest.raises(ValueError, match="batch"):
        antialias(torch.zeros(1, 4, 4, 3), rast, torch.stack([clip, clip, clip]), tris)


def test_interpolated_shading_then_antialias_runs_end_to_end():
    clip, tris = octahedron_scene()
    clip.requires_grad_(True)
    attr = torch.rand(clip.shape[0], 3, dtype=torch.float64, requires_grad=True)
    rast = rasterize(clip, tris, (24, 24), backend="cpu")
    image = antialias(interpolate(attr, rast, tris), rast, clip, tris)
    image.square().mean().backward()
    assert torch.isfinite(clip.grad).all() and torch.isfinite(attr.grad).all()
    assert attr.grad.abs().sum() > 0 and clip.grad.abs().sum() > 0
