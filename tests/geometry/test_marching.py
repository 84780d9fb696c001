"""Marching Tetrahedra: hand-computed tets, analytic shapes, orientation, Eq. 6, gradients, edge cases."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dyntet.geometry import (TetGrid, build_tet_grid, decode, edge_manifold_report, enclosed_volume,
                             face_normals, marching, mesh, shapes, surface_area, tetgrid, topology)

REFERENCE_TET = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def single_tet(vertices=REFERENCE_TET) -> TetGrid:
    return TetGrid.from_tets(vertices, [[0, 1, 2, 3]], 1)


def linear_sdf_gradient(grid: TetGrid, sdf: torch.Tensor, tets: torch.Tensor) -> torch.Tensor:
    """Gradient of the SDF interpolated linearly inside each given tet: float64 [N, 3]."""
    p = grid.vertices.double()[grid.tets[tets]]  # [N, 4, 3]
    s = sdf.double()[grid.tets[tets]]  # [N, 4]
    return torch.linalg.solve(p[:, 1:] - p[:, :1], (s[:, 1:] - s[:, :1])[..., None])[..., 0]


def assert_outward_along_gradient(grid: TetGrid, sdf: torch.Tensor, verts: torch.Tensor, topo) -> None:
    normals = face_normals(verts.double(), topo.faces, normalize=False)
    gradient = linear_sdf_gradient(grid, sdf, topo.face_tets)
    cosine = (normals * gradient).sum(-1) / (normals.norm(dim=-1) * gradient.norm(dim=-1))
    assert float(cosine.min()) > 1 - 1e-6, "faces must face the direction of increasing SDF"


def test_doctests() -> None:
    for module in (marching, mesh, tetgrid):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# --- one tetrahedron, by hand ---------------------------------------------------------------------------


def test_one_inside_by_hand() -> None:
    grid = single_tet()
    sdf = torch.tensor([-1.0, 1.0, 3.0, 1.0])
    topo = topology(grid, sdf)
    assert topo.edge_vertices.tolist() == [[0, 1], [0, 2], [0, 3]]
    assert topo.faces.tolist() == [[0, 1, 2]]  # x, y, z axis points: normal (1, 1, 1) / sqrt 3, outward
    assert topo.face_tets.tolist() == [0]
    verts = decode(topo, grid.vertices, sdf)
    assert verts.tolist() == [[0.5, 0.0, 0.0], [0.0, 0.25, 0.0], [0.0, 0.0, 0.5]]


def test_three_inside_by_hand() -> None:
    grid = single_tet()
    sdf = torch.tensor([1.0, -1.0, -1.0, -3.0])  # vertex 0 alone outside: the normal points to it
    topo = topology(grid, sdf)
    verts = decode(topo, grid.vertices, sdf)
    assert verts.tolist() == [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.25]]
    normal = face_normals(verts, topo.faces)[0]
    expected = -torch.tensor([0.5, 0.5, 1.0]) / math.sqrt(1.5)  # plane 2x + 2y + 4z = 1, towards the origin
    assert torch.allclose(normal, expected, atol=1e-6)


def test_two_inside_by_hand() -> None:
    grid = single_tet()
    sdf = torch.tensor([-1.0, -1.0, 1.0, 1.0])
    topo = topology(grid, sdf)
    assert topo.edge_vertices.tolist() == [[0, 2], [0, 3], [1, 2], [1, 3]]
    assert topo.num_faces == 2 and topo.face_tets.tolist() == [0, 0]
    verts = decode(topo, grid.vertices, sdf)
    assert verts.tolist() == [[0.0, 0.5, 0.0], [0.0, 0.0, 0.5], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5]]
    # The quad is a parallelogram with sides (0.5, 0, 0) and (0, -0.5, 0.5): area sqrt(2) / 4.
    assert float(surface_area(verts, topo.faces)) == pytest.approx(math.sqrt(2) / 4)
    normals = face_normals(verts, topo.faces)
    assert torch.allclose(normals, torch.tensor([0.0, 1.0, 1.0]).div(math.sqrt(2)).expand(2, 3), atol=1e-6)
    report = edge_manifold_report(topo.faces)
    assert report.num_edges == 5 and report.boundary_edges == 4 and report.misoriented_edges == 0


@pytest.mark.parametrize("code", range(1, 15))
def test_every_sign_pattern_on_a_random_tet(code: int) -> None:
    """All 14 cut patterns on a random positive tet with random magnitudes: right count, on the zero
    plane of the linear SDF, wound along its gradient."""
    rng = np.random.default_rng(code)
    verts = rng.normal(size=(4, 3))
    if np.linalg.det(verts[1:] - verts[0]) < 0:
        verts[[2, 3]] = verts[[3, 2]]
    grid = single_tet(verts)
    inside = [(code >> k) & 1 for k in range(4)]
    sdf = torch.tensor([-v if i else v for i, v in zip(inside, rng.uniform(0.05, 2.0, 4))])
    topo = topology(grid, sdf)
    assert topo.num_faces == (2 if sum(inside) == 2 else 1)
    assert topo.num_vertices == (4 if sum(inside) == 2 else 3)
    out = decode(topo, grid.vertices.double(), sdf.double())
    gradient = linear_sdf_gradient(grid, sdf, torch.zeros(1, dtype=torch.int64))[0]
    # Linear SDF at the decoded points: s0 + g . (p - v0) must vanish.
    values = sdf[0].double() + (out - grid.vertices[0].double()) @ gradient
    assert float(values.abs().max()) < 1e-12
    assert_outward_along_gradient(grid, sdf, out, topo)


# --- analytic shapes on the r = 128 grid ----------------------------------------------------------------


def test_sphere_at_128(grid128: TetGrid) -> None:
    radius = 0.3
    sdf = shapes.sphere_sdf(grid128.vertices, radius)
    topo = topology(grid128, sdf)
    verts = decode(topo, grid128.vertices.double(), sdf.double())
    report = edge_manifold_report(topo.faces)
    assert report.closed and report.edge_manifold and report.consistently_oriented
    assert report.euler_characteristic == 2
    assert float(surface_area(verts, topo.faces)) == pytest.approx(shapes.sphere_area(radius), rel=0.01)
    assert float(enclosed_volume(verts, topo.faces)) == pytest.approx(shapes.sphere_volume(radius), rel=0.01)
    # Each vertex lies on an edge of length <= 2/r that crosses the sphere.
    assert float((verts.norm(dim=-1) - radius).abs().max()) < 2 / 128
    assert_outward_along_gradient(grid128, sdf, verts, topo)


def test_torus_at_128(grid128: TetGrid) -> None:
    major, minor = 0.25, 0.1
    sdf = shapes.torus_sdf(grid128.vertices, major, minor)
    topo = topology(grid128, sdf)
    verts = decode(topo, grid128.vertices.double(), sdf.double())
    report = edge_manifold_report(topo.faces)
    assert report.closed and report.edge_manifold and report.consistently_oriented
    assert report.euler_characteristic == 0
    assert float(surface_area(verts, topo.faces)) == pytest.approx(shapes.torus_area(major, minor), rel=0.01)
    assert float(enclosed_volume(verts, topo.faces)) == pytest.approx(
        shapes.torus_volume(major, minor), rel=0.01)


def test_decoded_points_are_exact_zero_crossings(grid8: TetGrid) -> None:
    """A linear SDF is reproduced exactly by the lerp: every decoded point lies on its plane."""
    normal = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    normal = normal / normal.norm()
    sdf = grid8.vertices.double() @ normal - 0.05
    topo = topology(grid8, sdf)
    verts = decode(topo, grid8.vertices.double(), sdf)
    assert topo.num_vertices > 0
    assert float((verts @ normal - 0.05).abs().max()) < 1e-12
    a, b = grid8.vertices.double()[topo.edge_vertices].unbind(1)
    t = ((verts - a) * (b - a)).sum(-1) / ((b - a) ** 2).sum(-1)
    assert float(t.min()) >= 0 and float(t.max()) <= 1


# --- properties ----------------------------------------------------------------------------------------


GRID6 = build_tet_grid(6)
GRID6_INTERIOR = (GRID6.vertices.abs() < 0.5).all(1)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.floats(0.05, 0.95))
def test_any_signs_give_a_closed_oriented_manifold(seed: int, fraction_inside: float) -> None:
    """Random signs (outside on the cube boundary) always give a closed, edge-manifold mesh whose faces
    follow the SDF gradient and enclose a positive volume."""
    rng = np.random.default_rng(seed)
    magnitude = torch.from_numpy(rng.uniform(0.01, 1.0, GRID6.num_vertices))
    inside = torch.from_numpy(rng.uniform(size=GRID6.num_vertices) < fraction_inside) & GRID6_INTERIOR
    sdf = torch.where(inside, -magnitude, magnitude)
    topo = topology(GRID6, sdf)
    report = edge_manifold_report(topo.faces)
    assert report.closed and report.edge_manifold and report.consistently_oriented
    if bool(inside.any()):
        verts = decode(topo, GRID6.vertices.double(), sdf)
        assert float(enclosed_volume(verts, topo.faces)) > 0
        assert_outward_along_gradient(GRID6, sdf, verts, topo)
    else:
        assert topo.num_faces == 0


def test_topology_reads_only_signs(grid8: TetGrid) -> None:
    sdf = shapes.torus_sdf(grid8.vertices, 0.25, 0.12)
    rescaled = sdf * torch.rand(sdf.shape).add(0.1) * 7
    a, b = topology(grid8, sdf), topology(grid8, rescaled)
    assert torch.equal(a.edge_vertices, b.edge_vertices)
    assert torch.equal(a.faces, b.faces) and torch.equal(a.face_tets, b.face_tets)


def test_faces_do_not_depend_on_offsets(grid8: TetGrid) -> None:
    """DynTet's per-frame pipeline: sdf from the undeformed grid, random offsets per frame."""
    sdf = shapes.sphere_sdf(grid8.vertices, 0.3)
    reference = topology(grid8, sdf)
    base = decode(reference, grid8.vertices, sdf)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        offsets = (torch.rand(grid8.num_vertices, 3, generator=generator) - 0.5) * (0.5 / grid8.resolution)
        topo = topology(grid8, sdf)
        moved = decode(topo, grid8.vertices, sdf, offsets)
        assert torch.equal(topo.faces, reference.faces)
        assert torch.equal(topo.edge_vertices, reference.edge_vertices)
        assert not torch.allclose(moved, base)
        assert float(enclosed_volume(moved, topo.faces)) == pytest.approx(
            float(enclosed_volume(base, topo.faces)), rel=0.1)


@pytest.mark.parametrize("batched_grid", [False, True])
def test_eq6_offsets_interpolate_like_vertices(grid8: TetGrid, batched_grid: bool) -> None:
    sdf = shapes.sphere_sdf(grid8.vertices.double(), 0.28)
    topo = topology(grid8, sdf.float())
    grid_verts = grid8.vertices.double()
    offsets = torch.randn(3, grid8.num_vertices, 3, dtype=torch.float64) * 0.01
    base = grid_verts.expand(3, -1, -1) if batched_grid else grid_verts
    split = decode(topo, base, sdf, offsets)
    summed = decode(topo, grid_verts + offsets, sdf)
    assert split.shape == summed.shape == (3, topo.num_vertices, 3)
    assert torch.allclose(split, summed, atol=1e-14)
    for frame in range(3):
        assert torch.allclose(decode(topo, grid_verts + offsets[frame], sdf), summed[frame], atol=1e-14)


def test_compact_topology_decodes_the_same(grid8: TetGrid) -> None:
    sdf = shapes.torus_sdf(grid8.vertices, 0.25, 0.12)
    topo = topology(grid8, sdf)
    used, local = topo.compact()
    assert torch.equal(used, torch.unique(topo.edge_vertices))
    assert local.num_grid_vertices == used.shape[0] < grid8.num_vertices
    assert torch.equal(used[local.edge_vertices], topo.edge_vertices)
    assert torch.equal(local.faces, topo.faces)
    offsets = torch.randn(2, grid8.num_vertices, 3) * 0.01
    full = decode(topo, grid8.vertices, sdf, offsets)
    assert torch.equal(decode(local, grid8.vertices[used], sdf[used], offsets[:, used]), full)


def test_gradcheck_small_grid() -> None:
    grid = build_tet_grid(4)
    generator = torch.Generator().manual_seed(1)
    sdf = shapes.sphere_sdf(grid.vertices.double(), 0.27)
    sdf = sdf + 0.02 * torch.sign(sdf)  # keep |sdf| away from 0 so finite differences keep the signs
    topo = topology(grid, sdf)
    assert topo.num_vertices > 0
    verts = (grid.vertices.double() + 0.01 * torch.randn(grid.num_vertices, 3, generator=generator,
                                                         dtype=torch.float64)).requires_grad_()
    offsets = (0.01 * torch.randn(2, grid.num_vertices, 3, generator=generator, dtype=torch.float64)
               ).requires_grad_()
    sdf = sdf.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda v, s: decode(topo, v, s), (verts, sdf))
    assert torch.autograd.gradcheck(lambda v, s, o: decode(topo, v, s, o), (verts, sdf, offsets))


# --- empty results and bad input -----------------------------------------------------------------------


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_empty_results(grid8: TetGrid, sign: float) -> None:
    sdf = torch.full((grid8.num_vertices,), sign, requires_grad=True)
    topo = topology(grid8, sdf)
    assert topo.edge_vertices.shape == (0, 2) and topo.faces.shape == (0, 3) and topo.face_tets.shape == (0,)
    assert topo.faces.dtype == torch.int64
    assert decode(topo, grid8.vertices, sdf).shape == (0, 3)
    batched = decode(topo, grid8.vertices.expand(4, -1, -1), sdf)
    assert batched.shape == (4, 0, 3)
    batched.sum().backward()
    assert float(sdf.grad.abs().sum()) == 0.0
    assert float(surface_area(batched.detach(), topo.faces).sum()) == 0.0
    assert edge_manifold_report(topo.faces).closed


def test_zero_sdf_counts_as_outside() -> None:
    grid = build_tet_grid(8)
    cube = grid.vertices.abs().max(dim=1).values - 0.25  # exactly 0 on many grid vertices
    topo = topology(grid, cube)
    verts = decode(topo, grid.vertices, cube)
    assert bool(torch.isfinite(verts).all())
    report = edge_manifold_report(topo.faces)
    assert report.closed and report.edge_manifold and report.consistently_oriented
    inside = (cube < 0).sum()
    assert topo.num_vertices > 0 and int(inside) > 0
    assert 0 < float(enclosed_volume(verts, topo.faces)) <= 0.5 ** 3 + 1e-6


def test_topology_validation(grid8: TetGrid) -> None:
    good = shapes.sphere_sdf(grid8.vertices, 0.3)
    with pytest.raises(ValueError, match=r"\[V\]"):
        topology(grid8, good[:-1])
    with pytest.raises(ValueError, match=r"\[V\]"):
        topology(grid8, good[:, None])
    with pytest.raises(ValueError, match="floating-point"):
        topology(grid8, (good < 0).long())
    bad = good.clone()
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        topology(grid8, bad)


def test_decode_validation(grid8: TetGrid) -> None:
    sdf = shapes.sphere_sdf(grid8.vertices, 0.3)
    topo = topology(grid8, sdf)
    with pytest.raises(ValueError, match="vertices must be"):
        decode(topo, grid8.vertices[:-1], sdf)
    with pytest.raises(ValueError, match="offsets must be"):
        decode(topo, grid8.vertices, sdf, grid8.vertices[None, :, :2])
    with pytest.raises(ValueError, match="sdf must be"):
        decode(topo, grid8.vertices, sdf[:-1])
    with pytest.raises(ValueError, match="different SDF"):
        decode(topo, grid8.vertices, -sdf.abs())
    decode(topo, grid8.vertices, -sdf.abs(), check_signs=False)  # the caller opted out


def test_topology_moves_with_device(grid8: TetGrid) -> None:
    topo = topology(grid8, shapes.sphere_sdf(grid8.vertices, 0.3)).to("meta")
    assert {t.device.type for t in (topo.edge_vertices, topo.faces, topo.face_tets)} == {"meta"}
    with pytest.raises(ValueError, match="grid is on"):
        topology(grid8.to("meta"), torch.zeros(grid8.num_vertices))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(grid8: TetGrid) -> None:
    sdf = shapes.torus_sdf(grid8.vertices, 0.25, 0.12)
    cpu = topology(grid8, sdf)
    gpu = topology(grid8.to("cuda"), sdf.cuda())
    assert torch.equal(gpu.faces.cpu(), cpu.faces) and torch.equal(gpu.edge_vertices.cpu(), cpu.edge_vertices)
    assert torch.allclose(decode(gpu, grid8.vertices.cuda(), sdf.cuda()).cpu(),
                          decode(cpu, grid8.vertices, sdf), atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_topology_within_candidates_equals_the_whole_grid(seed):
    """Signs change only on free vertices (a band around the surface), so the candidates' topology is
    the whole grid's: same vertices in the same order, same faces, same tets."""
    grid = build_tet_grid(16)
    before = shapes.sphere_sdf(grid.vertices, 0.3)
    free = before.abs() < 3.0 / 16
    within = marching.candidates(grid, before, free)
    assert len(within.tets) < len(grid.tets) and len(within.edges) < len(grid.edges)
    generator = torch.Generator().manual_seed(seed)
    after = before + torch.where(free, 0.1 * torch.randn(before.shape, generator=generator), 0.0)
    assert not torch.equal(before < 0, after < 0)                        # some signs did flip
    full, banded = topology(grid, after), topology(grid, after, within)
    for name in ("edge_vertices", "faces", "face_tets"):
        assert torch.equal(getattr(banded, name), getattr(full, name)), name
