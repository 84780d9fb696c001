"""Taubin smoothing as a sparse linear map: equal to the explicit λ|μ passes, values and gradients."""

from __future__ import annotations

import torch

from dyntet.geometry import build_tet_grid, decode, shapes, topology
from dyntet.geometry.smoothing import LAMBDA, MU, taubin_smoothing


def _mesh():
    grid = build_tet_grid(12)
    sdf = shapes.sphere_sdf(grid.vertices, 0.3)
    topo = topology(grid, sdf)
    return decode(topo, grid.vertices, sdf).double(), topo.faces


def _explicit(verts, faces, passes):
    """The same passes written out vertex by vertex from the one-ring sets."""
    ring = [set() for _ in range(verts.shape[-2])]
    for a, b, c in faces.tolist():
        ring[a] |= {b, c}
        ring[b] |= {a, c}
        ring[c] |= {a, b}
    out = verts
    for _ in range(passes):
        for weight in (LAMBDA, MU):
            mean = torch.stack([out[..., sorted(r), :].mean(-2) if r else out[..., i, :]
                                for i, r in enumerate(ring)], -2)
            out = out + weight * (mean - out)
    return out


def test_matches_the_explicit_passes_batched_and_single():
    verts, faces = _mesh()
    smooth = taubin_smoothing(faces, verts.shape[0], 2, dtype=torch.float64)
    batch = torch.stack([verts, 1.5 * verts])
    torch.testing.assert_close(smooth(batch), _explicit(batch, faces, 2))
    torch.testing.assert_close(smooth(verts), _explicit(verts, faces, 2))
    assert taubin_smoothing(faces, verts.shape[0], 0)(verts) is verts


def test_gradient_is_the_transposed_map():
    verts, faces = _mesh()
    smooth = taubin_smoothing(faces, verts.shape[0], 1, dtype=torch.float64)
    x = verts.clone().requires_grad_(True)
    weights = torch.randn_like(verts)
    (smooth(x) * weights).sum().backward()
    reference = verts.clone().requires_grad_(True)
    (_explicit(reference, faces, 1) * weights).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad)


def test_isolated_vertices_stay_put_and_pass_their_gradient_through():
    verts, faces = _mesh()
    verts = torch.cat([verts[:5], torch.tensor([[0.9, 0.9, 0.9]], dtype=verts.dtype), verts[5:]])
    faces = torch.where(faces >= 5, faces + 1, faces)                  # vertex 5 is on no face
    smooth = taubin_smoothing(faces, verts.shape[0], 2, dtype=torch.float64)
    x = verts.clone().requires_grad_(True)
    out = smooth(x)
    torch.testing.assert_close(out, _explicit(verts, faces, 2))
    torch.testing.assert_close(out[5], verts[5])
    weights = torch.randn_like(verts)
    (out * weights).sum().backward()
    reference = verts.clone().requires_grad_(True)
    (_explicit(reference, faces, 2) * weights).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad)
