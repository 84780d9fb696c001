"""Mesh measures: normals, area, volume, the manifold report and compaction, on hand-made meshes."""

from __future__ import annotations

import pytest
import torch

from dyntet.geometry import (build_tet_grid, decode, edge_manifold_report, enclosed_volume, face_normals,
                             remove_unreferenced, shapes, surface_area, topology, vertex_normals)

TET_VERTS = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
TET_FACES = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


def unit_cube() -> tuple[torch.Tensor, torch.Tensor]:
    """A closed, outward unit cube [0, 1]^3: float64 [8, 3] vertices, int64 [12, 3] faces."""
    verts = torch.tensor([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=torch.float64)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [tri for a, b, c, d in quads for tri in ((a, b, c), (a, c, d))]
    return verts, torch.tensor(faces)


def test_unit_cube_area_volume_and_normals() -> None:
    verts, faces = unit_cube()
    assert float(surface_area(verts, faces)) == pytest.approx(6.0)
    assert float(enclosed_volume(verts, faces)) == pytest.approx(1.0)
    # Volume of a closed mesh does not depend on where the origin is.
    assert float(enclosed_volume(verts + torch.tensor([3.0, -2.0, 5.0], dtype=torch.float64), faces)) == \
        pytest.approx(1.0)
    assert float(enclosed_volume(verts, faces.flip(1))) == pytest.approx(-1.0)
    centroids = verts[faces].mean(1)
    normals = face_normals(verts, faces)
    assert bool(((normals * (centroids - 0.5)).sum(-1) > 0).all()), "cube faces must point outward"
    corner_normals = vertex_normals(verts, faces)
    assert torch.allclose(corner_normals.norm(dim=-1), torch.ones(8, dtype=torch.float64))
    assert bool(((corner_normals * (verts - 0.5)).sum(-1) > 0).all())


def test_batched_equals_per_mesh() -> None:
    verts, faces = unit_cube()
    batch = torch.stack([verts, verts * 2.0, verts + 1.0])
    assert torch.allclose(surface_area(batch, faces), torch.tensor([6.0, 24.0, 6.0], dtype=torch.float64))
    assert torch.allclose(enclosed_volume(batch, faces), torch.tensor([1.0, 8.0, 1.0], dtype=torch.float64))
    for b in range(3):
        assert torch.allclose(face_normals(batch, faces)[b], face_normals(batch[b], faces))
        assert torch.allclose(vertex_normals(batch, faces)[b], vertex_normals(batch[b], faces))


def test_vertex_normals_of_a_sphere_are_radial() -> None:
    grid = build_tet_grid(32)
    sdf = shapes.sphere_sdf(grid.vertices, 0.3)
    topo = topology(grid, sdf)
    verts = decode(topo, grid.vertices, sdf)
    normals = vertex_normals(verts, topo.faces)
    radial = torch.nn.functional.normalize(verts, dim=-1)
    assert float((normals * radial).sum(-1).min()) > 0.95


def test_volume_gradient_is_area_weighted_normal() -> None:
    """dVol/dv_i = (1/6) sum of the incident faces' cross products: two functions, one identity."""
    grid = build_tet_grid(8)
    sdf = shapes.torus_sdf(grid.vertices, 0.25, 0.12)
    topo = topology(grid, sdf)
    verts = decode(topo, grid.vertices.double(), sdf.double()).requires_grad_()
    (gradient,) = torch.autograd.grad(enclosed_volume(verts, topo.faces), verts)
    cross = face_normals(verts.detach(), topo.faces, normalize=False)
    expected = torch.zeros_like(verts).index_add_(0, topo.faces.reshape(-1), cross.repeat_interleave(3, 0)) / 6
    assert torch.allclose(gradient, expected, atol=1e-12)


def test_area_gradient_flows() -> None:
    verts = TET_VERTS.clone().requires_grad_()
    surface_area(verts, TET_FACES).backward()
    assert bool(torch.isfinite(verts.grad).all()) and float(verts.grad.abs().sum()) > 0


def test_report_on_a_closed_tetrahedron() -> None:
    report = edge_manifold_report(TET_FACES)
    assert (report.num_vertices, report.num_edges, report.num_faces) == (4, 6, 4)
    assert report.closed and report.edge_manifold and report.consistently_oriented
    assert report.euler_characteristic == 2


def test_report_finds_a_hole() -> None:
    report = edge_manifold_report(TET_FACES[:3])
    assert report.boundary_edges == 3 and not report.closed and not report.edge_manifold
    assert report.consistently_oriented


def test_report_finds_a_flipped_face() -> None:
    faces = TET_FACES.clone()
    faces[1] = faces[1].flip(0)
    report = edge_manifold_report(faces)
    assert report.misoriented_edges == 3 and not report.consistently_oriented
    assert report.closed and report.edge_manifold


def test_report_finds_non_manifold_edges_and_degenerate_faces() -> None:
    faces = torch.cat([TET_FACES, torch.tensor([[0, 1, 4]]), torch.tensor([[2, 2, 3]])])
    report = edge_manifold_report(faces)
    assert report.non_manifold_edges == 1  # edge 0-1 now has three faces
    assert report.boundary_edges == 2  # 1-4 and 4-0
    assert report.degenerate_faces == 1
    assert not report.edge_manifold and not report.consistently_oriented


def test_remove_unreferenced() -> None:
    verts = torch.cat([torch.full((2, 3), 9.0), TET_VERTS, torch.full((1, 3), 7.0)])
    faces = TET_FACES + 2
    new_verts, new_faces, kept = remove_unreferenced(verts, faces)
    assert kept.tolist() == [2, 3, 4, 5]
    assert torch.equal(new_verts, TET_VERTS) and torch.equal(new_faces, TET_FACES)
    batched, batched_faces, _ = remove_unreferenced(torch.stack([verts, verts * 2]), faces)
    assert batched.shape == (2, 4, 3) and torch.equal(batched[1], TET_VERTS * 2)
    assert torch.equal(batched_faces, TET_FACES)


def test_validation() -> None:
    with pytest.raises(ValueError, match="verts must be"):
        face_normals(TET_VERTS[:, :2], TET_FACES)
    with pytest.raises(ValueError, match="faces must be"):
        surface_area(TET_VERTS, TET_FACES.float())
    with pytest.raises(ValueError, match="faces must be"):
        edge_manifold_report(TET_FACES[:, :2])
    with pytest.raises(ValueError, match="verts must be"):
        enclosed_volume(TET_VERTS.long(), TET_FACES)


def test_faceting_is_zero_on_a_plane_and_falls_when_marching_tets_creases_are_smoothed():
    from dyntet.geometry.mesh import faceting_deg
    from dyntet.geometry.smoothing import taubin_smoothing

    flat = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0]])
    assert faceting_deg(flat, torch.tensor([[0, 1, 2], [0, 2, 3], [1, 4, 2]])) == pytest.approx(0.0, abs=1e-6)
    cube_edge = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert faceting_deg(cube_edge, torch.tensor([[0, 2, 1], [0, 1, 3]])) == pytest.approx(90.0)
    grid = build_tet_grid(32)
    # a learned SDF is never exact: per-vertex noise of a tenth of a cell gives the lattice zig-zag
    noise = torch.randn(grid.vertices.shape[0], generator=torch.Generator().manual_seed(0)) * 0.1 / 32
    sdf = shapes.sphere_sdf(grid.vertices, 0.3) + noise
    topo = topology(grid, sdf)
    verts = decode(topo, grid.vertices, sdf)
    raw = faceting_deg(verts, topo.faces)
    smoothed = faceting_deg(taubin_smoothing(topo.faces, verts.shape[0], 8)(verts), topo.faces)
    assert 2 < raw < 45 and smoothed < 0.7 * raw
