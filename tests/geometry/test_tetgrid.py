"""The BCC tetrahedral grid: counts, orientation, conformity, edge tables and the disk cache."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from dyntet.geometry import TetGrid, bcc_counts, build_tet_grid, tet_grid
from dyntet.geometry import tetgrid as tetgrid_module
from dyntet.geometry.tetgrid import LOCAL_EDGES, cache_path

# Triangles of a tet opposite to vertex 3, 2, 1, 0, each wound counter-clockwise seen from outside for a
# positively oriented tet.
OUTWARD_FACES = ((0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3))


def signed_volumes(grid: TetGrid) -> np.ndarray:
    v = grid.vertices.double().numpy()
    t = grid.tets.numpy()
    p0 = v[t[:, 0]]
    return np.einsum("ij,ij->i", v[t[:, 1]] - p0, np.cross(v[t[:, 2]] - p0, v[t[:, 3]] - p0)) / 6.0


def test_counts_at_the_documented_resolutions() -> None:
    assert bcc_counts(32) == (10_545, 52_224)
    assert bcc_counts(64) == (74_849, 405_504)
    assert bcc_counts(128) == (561_345, 3_194_880)


@pytest.mark.parametrize("resolution", [2, 4, 6, 32])
def test_built_grid_matches_counts_and_lattice(resolution: int) -> None:
    grid = build_tet_grid(resolution)
    assert (grid.num_vertices, grid.num_tets) == bcc_counts(resolution)
    assert grid.resolution == resolution
    assert float(grid.vertices.min()) == -0.5 and float(grid.vertices.max()) == 0.5
    scaled = (grid.vertices.double() + 0.5) * resolution
    assert float((scaled - scaled.round()).abs().max()) < 1e-5, "vertices must sit on the 1/r lattice"
    assert torch.unique(grid.vertices, dim=0).shape[0] == grid.num_vertices, "duplicate vertices"
    assert int(grid.tets.min()) == 0 and int(grid.tets.max()) == grid.num_vertices - 1


@pytest.mark.parametrize("resolution", [2, 4, 8])
def test_tets_positive_and_fill_the_cube(resolution: int) -> None:
    volumes = signed_volumes(build_tet_grid(resolution))
    assert (volumes > 0).all()
    assert volumes.sum() == pytest.approx(1.0, abs=1e-12)


def test_r128_tets_positive_and_fill_the_cube(grid128: TetGrid) -> None:
    volumes = signed_volumes(grid128)
    assert volumes.min() > 0
    assert volumes.sum() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("resolution", [4, 8])
def test_conforming_triangles(resolution: int) -> None:
    """Interior triangles are shared by two tets with opposite windings, boundary ones lie on the cube."""
    grid = build_tet_grid(resolution)
    tris = grid.tets[:, torch.tensor(OUTWARD_FACES)].reshape(-1, 3)  # [4T, 3] outward per tet
    keys, inverse, counts = torch.unique(tris.sort(1).values, dim=0, return_inverse=True, return_counts=True)
    assert int(counts.max()) <= 2
    # Opposite windings: the two copies of an interior triangle are odd permutations of each other.
    parity = _permutation_parity(tris)
    parity_sum = torch.zeros(len(keys), dtype=torch.int64).index_add_(0, inverse, parity)
    assert torch.equal(parity_sum[counts == 2], torch.ones(int((counts == 2).sum()), dtype=torch.int64))
    boundary = keys[counts == 1]
    corners = grid.vertices[boundary]  # [Fb, 3, 3]
    on_face = ((corners == corners[:, :1]).all(1) & (corners[:, 0].abs() == 0.5)).any(-1)
    assert bool(on_face.all()), "a triangle used by one tet is not on the cube boundary"
    n = resolution // 2
    assert boundary.shape[0] == 6 * n * n * 4
    area = 0.5 * torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]).norm(dim=-1)
    assert float(area.double().sum()) == pytest.approx(6.0)
    # Euler characteristic of a ball: V - E + F - T = 1.
    assert grid.num_vertices - grid.edges.shape[0] + keys.shape[0] - grid.num_tets == 1


def _permutation_parity(tris: torch.Tensor) -> torch.Tensor:
    """0 for triangles whose (rotated) index order is ascending, 1 otherwise: int64 [F]."""
    a, b, c = tris.unbind(1)
    return ((a < b).long() + (b < c).long() + (c < a).long() == 1).long()


@pytest.mark.parametrize("resolution", [4, 8, 32])
def test_edge_tables(resolution: int) -> None:
    grid = build_tet_grid(resolution)
    edges = grid.edges
    assert bool((edges[:, 0] < edges[:, 1]).all())
    keys = edges[:, 0] * grid.num_vertices + edges[:, 1]
    assert bool((keys[1:] > keys[:-1]).all()), "edges must be unique and sorted"
    for k, (i, j) in enumerate(LOCAL_EDGES):
        pair = grid.tets[:, [i, j]].sort(1).values
        assert torch.equal(edges[grid.tet_edges[:, k]], pair)
    assert torch.unique(grid.tet_edges).shape[0] == edges.shape[0], "an edge belongs to no tet"
    lengths = (grid.vertices[edges[:, 0]] - grid.vertices[edges[:, 1]]).norm(dim=-1) * resolution
    assert float(lengths.min()) == pytest.approx(1.0) and float(lengths.max()) == pytest.approx(2.0)


def test_from_tets_rejects_bad_input() -> None:
    verts = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match="positively oriented"):
        TetGrid.from_tets(verts, [[0, 2, 1, 3]], 1)
    with pytest.raises(ValueError, match=r"\[T, 4\]"):
        TetGrid.from_tets(verts, [[0, 1, 2]], 1)
    with pytest.raises(ValueError, match="lie in"):
        TetGrid.from_tets(verts, [[0, 1, 2, 4]], 1)
    with pytest.raises(ValueError, match="float32"):
        TetGrid(1, torch.zeros(4, 3, dtype=torch.float64), torch.zeros(1, 4, dtype=torch.int64),
                torch.zeros(6, 2, dtype=torch.int64), torch.zeros(1, 6, dtype=torch.int64))


@pytest.mark.parametrize("resolution", [0, 1, 3, -2])
def test_bad_resolution(resolution: int) -> None:
    with pytest.raises(ValueError, match="even"):
        build_tet_grid(resolution)


def test_resolution_type() -> None:
    with pytest.raises(TypeError):
        tet_grid(4.0)  # type: ignore[arg-type]


def test_to_moves_every_tensor() -> None:
    moved = build_tet_grid(2).to("meta")
    assert {t.device.type for t in (moved.vertices, moved.tets, moved.edges, moved.tet_edges)} == {"meta"}
    assert moved.device.type == "meta"


# --- cache ---------------------------------------------------------------------------------------------


def assert_same_grid(a: TetGrid, b: TetGrid) -> None:
    assert a.resolution == b.resolution
    for name in ("vertices", "tets", "edges", "tet_edges"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and torch.equal(x, y), name


def test_cache_round_trip(tmp_path, monkeypatch) -> None:
    built = tet_grid(6, tmp_path)
    path = cache_path(6, tmp_path)
    assert path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "temporary files left behind"

    def no_build(resolution: int) -> TetGrid:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(tetgrid_module, "build_tet_grid", no_build)
    assert_same_grid(tet_grid(6, tmp_path), built)
    with np.load(path, allow_pickle=False) as data:
        assert data["tets"].dtype == np.int32


def test_cache_dir_from_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DYNTET_CACHE_DIR", str(tmp_path / "env"))
    tet_grid(2)
    assert cache_path(2).parent == tmp_path / "env"
    assert cache_path(2).is_file()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_resolution", "bad_index"])
def test_corrupt_cache_is_rebuilt(tmp_path, caplog, damage: str) -> None:
    good = tet_grid(4, tmp_path)
    path = cache_path(4, tmp_path)
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    else:
        arrays = {k: v for k, v in np.load(path, allow_pickle=False).items()}
        if damage == "wrong_resolution":
            arrays["resolution"] = np.int64(6)
        else:
            arrays["tets"][0, 0] = 10_000
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
    with caplog.at_level(logging.WARNING, logger="dyntet.geometry.tetgrid"):
        rebuilt = tet_grid(4, tmp_path)
    assert_same_grid(rebuilt, good)
    assert "rebuilding" in caplog.text
    assert_same_grid(tet_grid(4, tmp_path), good)  # the file was rewritten and now loads


def test_unwritable_cache_dir_still_gives_a_grid(tmp_path, caplog) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="dyntet.geometry.tetgrid"):
        grid = tet_grid(2, blocker)
    assert grid.num_vertices == bcc_counts(2)[0]
    assert "could not write" in caplog.text
