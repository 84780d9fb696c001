"""Silhouette fitting: antialias gradients alone must move and scale a sphere onto a target mask."""

from __future__ import annotations

import math

import pytest
import torch

from dyntet.render.camera import look_at, project_to_pixels, projection, to_clip
from dyntet.render.raster import antialias, available_backends, build_topology, rasterize


def icosphere(subdivisions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit icosphere: float64 [V, 3] vertices, int64 [F, 3] outward faces, F = 20 · 4**subdivisions."""
    t = (1 + math.sqrt(5)) / 2
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
             (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
             (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
             (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    verts = [tuple(c / math.sqrt(1 + t * t) for c in v) for v in verts]
    for _ in range(subdivisions):
        midpoint: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in midpoint:
                m = [(p + q) / 2 for p, q in zip(verts[a], verts[b])]
                norm = math.sqrt(sum(c * c for c in m))
                verts.append(tuple(c / norm for c in m))
                midpoint[key] = len(verts) - 1
            return midpoint[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    return torch.tensor(verts, dtype=torch.float64), torch.tensor(faces)


def test_icosphere_is_closed_and_outward():
    verts, faces = icosphere(2)
    assert faces.shape == (320, 3) and verts.shape == (162, 3)
    assert (build_topology(faces).neighbours >= 0).all()
    a, b, c = verts[faces].unbind(1)
    assert ((torch.linalg.cross(b - a, c - a) * (a + b + c)).sum(-1) > 0).all()


@pytest.mark.parametrize("backend", available_backends())
def test_sphere_silhouette_fit_recovers_position_and_scale(backend):
    size = 64
    verts, faces = icosphere(3)
    verts = verts.float()
    topology = build_topology(faces)
    view = look_at(torch.tensor([0.0, 0.0, 3.0]), torch.zeros(3))
    intrinsics = torch.tensor([1.4 * size, 1.4 * size, size / 2, size / 2])
    proj = projection(intrinsics, size, size)

    def render(centre: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        points = verts * log_scale.exp() + torch.cat([centre, torch.zeros(1)])
        clip = to_clip(points, view, proj)
        rast = rasterize(clip, faces, (size, size), backend=backend)
        mask = (rast[..., 3:] > 0).float()
        return antialias(mask, rast, clip, faces, topology=topology, backend=backend)

    target_centre, target_log_scale = torch.tensor([0.21, -0.13]), torch.tensor(math.log(0.62))
    target = render(target_centre, target_log_scale).detach()
    centre = torch.tensor([-0.05, 0.08], requires_grad=True)
    log_scale = torch.tensor(math.log(0.45), requires_grad=True)
    optimiser = torch.optim.Adam([centre, log_scale], lr=0.02)
    losses = []
    for _ in range(100):
        optimiser.zero_grad()
        loss = (render(centre, log_scale) - target).square().mean()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0], f"loss only fell from {losses[0]:.4f} to {losses[-1]:.6f}"
    pixel = project_to_pixels(torch.cat([centre.detach(), torch.zeros(1)])[None], view, intrinsics)
    target_pixel = project_to_pixels(torch.cat([target_centre, torch.zeros(1)])[None], view, intrinsics)
    assert (pixel - target_pixel).norm() < 0.25, f"centre off by {(pixel - target_pixel).norm():.2f} px"
    radius_error_px = (log_scale.exp() - target_log_scale.exp()).abs() * 1.4 * size / 3.0  # focal / depth
    assert radius_error_px < 0.25, f"radius off by {radius_error_px:.2f} px"
