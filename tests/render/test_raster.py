"""Conformance of rasterize / interpolate against a brute-force per-pixel reference, fill rule, clipping.

Every test that renders runs on each backend in ``available_backends()`` (the CPU one here).
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from dyntet.render.raster import (available_backends, build_topology, interpolate, rasterize,
                                  resolve_backend)
from dyntet.render.raster_visibility import W_EPS, guard_band, triangle_ids

BACKENDS = available_backends()
NUDGE = 0.01  # pixels: a reference answer that changes within this distance is ambiguous


def reference(clip_v4: np.ndarray, tris_f3: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: for each pixel centre test every triangle (float64 homogeneous barycentrics).

    Returns int [H, W] ``triangle id + 1`` (0 background, -1 ambiguous: the winner changes when the sample
    moves by ``NUDGE`` pixels, i.e. an edge or a depth tie passes within that distance) and float
    [H, W, 3] (u, v, z/w) at the unmoved centre.
    """
    corners = np.asarray(clip_v4, np.float64)[tris_f3]  # [F, 3, 4]
    x, y, z, w = np.moveaxis(corners, -1, 0)
    ids = np.zeros((height, width), np.int64)
    values = np.zeros((height, width, 3))
    for row in range(height):
        for col in range(width):
            winners = set()
            for k, (ox, oy) in enumerate([(0, 0), (NUDGE, 0), (-NUDGE, 0), (0, NUDGE), (0, -NUDGE)]):
                px = (col + 0.5 + ox) / width * 2 - 1
                py = (row + 0.5 + oy) / height * 2 - 1
                dx, dy = x - w * px, y - w * py
                b = np.cross(dx, dy)  # b_i ∝ det[p, v_{i+1}, v_{i+2}]
                total = b.sum(1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    bn = b / total[:, None]
                    depth_w = (bn * w).sum(1)  # w of the surface point seen through the pixel
                    zw = (bn * z).sum(1) / depth_w
                hit = (total != 0) & (bn >= 0).all(1) & (depth_w > 1e-6) & (zw >= -1) & (zw <= 1)
                if not hit.any():
                    winners.add(0)
                    continue
                cand = np.flatnonzero(hit)
                best = cand[np.argmin(zw[cand])]
                winners.add(best + 1)
                if k == 0:
                    values[row, col] = bn[best, 0], bn[best, 1], zw[best]
            ids[row, col] = winners.pop() if len(winners) == 1 else -1
    return ids, values


def random_soup(rng: np.random.Generator, num_tris: int, w_range: tuple[float, float]) -> np.ndarray:
    """Clip positions [3F, 4] of independent random triangles (vertex i of triangle f at 3f + i)."""
    w = rng.uniform(*w_range, 3 * num_tris)
    xy = rng.uniform(-1.3, 1.3, (3 * num_tris, 2)) * np.abs(w)[:, None]
    z = rng.uniform(-0.95, 0.95, 3 * num_tris) * np.abs(w)
    return np.concatenate([xy, z[:, None], w[:, None]], 1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case, w_range, dtype", [
    ("affine", (1.0, 1.0), torch.float64),
    ("perspective", (0.4, 3.0), torch.float64),
    ("perspective-f32", (0.4, 3.0), torch.float32),
    ("behind-camera", (-0.8, 2.0), torch.float64),
])
def test_matches_brute_force_reference(backend, case, w_range, dtype):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    height, width, num_tris = 20, 36, 24  # non-square catches swapped axes
    clip = random_soup(rng, num_tris, w_range)
    tris = np.arange(3 * num_tris).reshape(num_tris, 3)
    ref_ids, ref_vals = reference(clip, tris, height, width)
    rast = rasterize(torch.tensor(clip, dtype=dtype), torch.tensor(tris), (height, width), backend=backend)
    assert rast.shape == (1, height, width, 4) and rast.dtype == (torch.float32 if backend == "nvdiffrast" else dtype)
    got = rast[0].double().numpy()
    clear = ref_ids >= 0
    assert clear.mean() > 0.95, "test geometry too ambiguous to be meaningful"
    assert (ref_ids > 0).mean() > 0.3 and (ref_ids == 0).any(), "expected a mix of hits and background"
    np.testing.assert_array_equal(got[..., 3][clear], ref_ids[clear])
    hit = clear & (ref_ids > 0)
    tol = 1e-9 if dtype == torch.float64 and backend == "cpu" else 5e-4
    np.testing.assert_allclose(got[..., :3][hit], ref_vals[hit], atol=tol)
    assert (got[~(ref_ids > 0) & clear] == 0).all(), "background pixels must be all zero"


@pytest.mark.parametrize("backend", BACKENDS)
def test_vertices_near_the_camera_plane_match_reference(backend):
    # vertices at tiny w project millions of pixels away: these triangles go through the guard-band
    # and camera-plane clipping; inside the image they must still match the reference exactly
    rng = np.random.default_rng(21)
    num_tris = 30
    w = np.where(rng.random(3 * num_tris) < 0.3, 10 ** rng.uniform(-8, -4, 3 * num_tris),
                 rng.uniform(0.5, 2.0, 3 * num_tris))
    xy = rng.uniform(-1.0, 1.0, (3 * num_tris, 2)) * np.where(w > 0.1, w, 30.0)[:, None]
    z = rng.uniform(-0.9, 0.9, 3 * num_tris) * w
    clip = np.concatenate([xy, z[:, None], w[:, None]], 1)
    tris = np.arange(3 * num_tris).reshape(num_tris, 3)
    assert (np.abs(xy / w[:, None]) > guard_band(16, 20)).any(), "expected vertices beyond the guard band"
    assert (w < W_EPS).any(), "expected vertices behind the camera plane's epsilon"
    ref_ids, ref_vals = reference(clip, tris, 16, 20)
    rast = rasterize(torch.tensor(clip), torch.tensor(tris), (16, 20), backend=backend)[0].double().numpy()
    clear = ref_ids >= 0
    assert clear.mean() > 0.95 and (ref_ids > 0).mean() > 0.3
    np.testing.assert_array_equal(rast[..., 3][clear], ref_ids[clear])
    hit = clear & (ref_ids > 0)
    np.testing.assert_allclose(rast[..., :3][hit], ref_vals[hit], atol=1e-6 if backend == "cpu" else 1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_interpolate_matches_reference_barycentrics(backend):
    rng = np.random.default_rng(7)
    clip = random_soup(rng, 16, (0.5, 2.0))
    tris = np.arange(48).reshape(16, 3)
    attr = rng.normal(size=(48, 5))
    ref_ids, ref_vals = reference(clip, tris, 16, 16)
    rast = rasterize(torch.tensor(clip), torch.tensor(tris), (16, 16), backend=backend)
    out = interpolate(torch.tensor(attr), rast, torch.tensor(tris), backend=backend)[0].double().numpy()
    hit = ref_ids > 0
    t = tris[ref_ids[hit] - 1]
    u, v = ref_vals[hit][:, :1], ref_vals[hit][:, 1:2]
    expected = u * attr[t[:, 0]] + v * attr[t[:, 1]] + (1 - u - v) * attr[t[:, 2]]
    np.testing.assert_allclose(out[hit], expected, atol=1e-4)
    assert (out[ref_ids == 0] == 0).all()


def grid_mesh(xs: np.ndarray, ys: np.ndarray, jitter: float = 0.0,
              rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """NDC grid over ticks ``xs`` × ``ys``, quads split into triangles with alternating diagonals.

    ``jitter`` moves inner vertices at random by up to that much (the outline stays put).
    """
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    xy = np.stack([gx, gy], -1)
    if jitter:
        xy[1:-1, 1:-1] += rng.uniform(-jitter, jitter, xy[1:-1, 1:-1].shape)
    idx = np.arange(xy.shape[0] * xy.shape[1]).reshape(xy.shape[:2])
    tris = []
    for r in range(len(ys) - 1):
        for c in range(len(xs) - 1):
            a, b, d, e = idx[r, c], idx[r, c + 1], idx[r + 1, c], idx[r + 1, c + 1]
            tris += [[a, b, e], [a, e, d]] if (r + c) % 2 else [[a, b, d], [b, e, d]]
    return xy.reshape(-1, 2), np.array(tris)


def coverage_counts(clip: torch.Tensor, tris: torch.Tensor, size: tuple[int, int], backend: str) -> np.ndarray:
    """How many triangles cover each pixel, rendering each triangle alone (exposes double coverage)."""
    counts = np.zeros(size, np.int64)
    for f in range(tris.shape[0]):
        rast = rasterize(clip, tris[f:f + 1], size, backend=backend)
        counts += (rast[0, ..., 3] > 0).numpy()
    return counts


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["pixel-aligned", "jittered-perspective"])
def test_fill_rule_covers_every_pixel_exactly_once(backend, layout):
    size = (12, 16)
    rng = np.random.default_rng(3)
    if layout == "pixel-aligned":
        # vertices on pixel centres, cells two pixels wide: many centres lie exactly on shared
        # horizontal, vertical and diagonal (both directions) edges and on shared vertices
        xs = (2 * np.arange(-1, 10) + 0.5) / 8 - 1  # pixel x = 2j + 0.5 in a 16-wide image
        ys = (2 * np.arange(-1, 8) + 0.5) / 6 - 1  # pixel y = 2j + 0.5 in a 12-high image
        xy, tris = grid_mesh(xs, ys)
        w = np.ones(len(xy))
    else:
        ticks = np.linspace(-1.2, 1.2, 7)
        xy, tris = grid_mesh(ticks, ticks, jitter=0.12, rng=rng)
        w = rng.uniform(0.5, 2.0, len(xy))
    clip = np.concatenate([xy * w[:, None], rng.uniform(-0.5, 0.5, (len(xy), 1)) * w[:, None], w[:, None]], 1)
    clip_t, tris_t = torch.tensor(clip), torch.tensor(tris)
    counts = coverage_counts(clip_t, tris_t, size, backend)
    np.testing.assert_array_equal(counts, np.ones(size, np.int64))
    rast = rasterize(clip_t, tris_t, size, backend=backend)
    assert (rast[0, ..., 3] > 0).all(), "holes in a mesh that covers the screen"


def test_fill_rule_holds_at_a_shared_vertex_on_a_pixel_centre():
    # a fan of 7 triangles around a vertex placed exactly on the centre of pixel (row 3, col 4)
    centre = np.array([(4 + 0.5) / 8 * 2 - 1, (3 + 0.5) / 8 * 2 - 1])
    angles = np.sort(np.random.default_rng(5).uniform(0, 2 * np.pi, 7))
    ring = centre + 0.6 * np.stack([np.cos(angles), np.sin(angles)], 1)
    xy = np.vstack([centre, ring])
    clip = torch.tensor(np.concatenate([xy, np.zeros((8, 1)), np.ones((8, 1))], 1))
    tris = torch.tensor([[0, 1 + i, 1 + (i + 1) % 7] for i in range(7)])
    counts = coverage_counts(clip, tris, (8, 8), "cpu")
    assert counts[3, 4] == 1
    assert counts.max() == 1


def test_clipped_plane_is_watertight_and_matches_reference():
    # a tessellated plane that crosses the camera plane: its visible part must have no holes and
    # no double coverage, and match the reference pixel by pixel
    xy, tris = grid_mesh(np.linspace(-1, 1, 7), np.linspace(-1, 1, 7))
    w = 0.3 + 1.5 * xy[:, 1]  # w < 0 over the lower third of the plane
    clip = np.concatenate([xy * 1.5, 0.2 * np.ones((len(xy), 1)), w[:, None]], 1)
    size = (16, 16)
    counts = coverage_counts(torch.tensor(clip), torch.tensor(tris), size, "cpu")
    ref_ids, _ = reference(clip, tris, *size)
    assert counts.max() == 1
    assert (ref_ids > 0).sum() > 40 and (ref_ids == 0).sum() > 10
    np.testing.assert_array_equal(counts[ref_ids > 0], 1)
    np.testing.assert_array_equal(counts[ref_ids == 0], 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_depth_test_and_exact_ties(backend):
    quad = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    clip = np.zeros((12, 4))
    for layer, z in enumerate([0.5, -0.25, -0.25]):  # layers 1 and 2 tie exactly, both in front of 0
        clip[4 * layer:4 * layer + 4, :2] = quad
        clip[4 * layer:4 * layer + 4, 2] = z
    clip[:, 3] = 1
    tris = np.array([[0, 1, 2], [0, 2, 3], [8, 9, 10], [8, 10, 11], [4, 5, 6], [4, 6, 7]])
    rast = rasterize(torch.tensor(clip), torch.tensor(tris), (6, 6), backend=backend)[0]
    assert set(rast[..., 3].unique().tolist()) <= {3.0, 4.0}, "the tie must go to the smaller triangle index"
    torch.testing.assert_close(rast[..., 2], torch.full((6, 6), -0.25, dtype=rast.dtype))


def test_result_does_not_depend_on_the_parallel_split():
    rng = np.random.default_rng(11)
    clip = np.stack([random_soup(rng, 200, (0.5, 2.0)), random_soup(rng, 200, (-0.5, 2.0))])
    tris = np.arange(600).reshape(200, 3)
    one = triangle_ids(clip, tris, 43, 29, num_tasks=1)
    assert len(np.unique(one)) > 50
    for tasks in (2, 3, 7):
        np.testing.assert_array_equal(triangle_ids(clip, tris, 43, 29, num_tasks=tasks), one)
    # concurrent calls from several Python threads share the worker pool safely
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: triangle_ids(clip, tris, 43, 29, num_tasks=3), range(8)))
    for result in results:
        np.testing.assert_array_equal(result, one)


@pytest.mark.parametrize("backend", BACKENDS)
def test_near_and_far_planes_clip_per_pixel(backend):
    # a slanted quad from z/w = -3 (left) to 3 (right): only the middle third is drawn
    clip = torch.tensor([[-1, -1, -3, 1], [1, -1, 3, 1], [1, 1, 3, 1], [-1, 1, -3, 1]], dtype=torch.float64)
    rast = rasterize(clip, torch.tensor([[0, 1, 2], [0, 2, 3]]), (4, 12), backend=backend)[0]
    drawn = (rast[..., 3] > 0).numpy()
    np.testing.assert_array_equal(drawn.any(0), [False] * 4 + [True] * 4 + [False] * 4)
    assert drawn.all(0)[4:8].all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_triangles_behind_the_camera(backend):
    behind = torch.tensor([[-1, -1, 0, -1], [1, -1, 0, -1], [0, 1, 0, -1]], dtype=torch.float32)
    rast = rasterize(behind, torch.tensor([[0, 1, 2]]), (8, 8), backend=backend)
    assert (rast == 0).all()
    # a triangle crossing the camera plane: drawn in part, finite gradients
    crossing = torch.tensor([[-0.5, -0.5, 0.2, 1], [0.5, -0.5, 0.2, 1], [0.1, 0.8, 0.2, -0.5]], requires_grad=True)
    rast = rasterize(crossing, torch.tensor([[0, 1, 2]]), (16, 16), backend=backend)
    covered = (rast[..., 3] > 0).sum().item()
    assert 0 < covered < 256
    interpolate(torch.rand(3, 2), rast, torch.tensor([[0, 1, 2]])).sum().backward()
    assert torch.isfinite(crossing.grad).all() and crossing.grad.abs().sum() > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_mesh(backend):
    tris = torch.zeros((0, 3), dtype=torch.int64)
    rast = rasterize(torch.zeros((2, 5, 4)), tris, (4, 6), backend=backend)
    assert rast.shape == (2, 4, 6, 4) and (rast == 0).all()
    assert (interpolate(torch.ones(5, 3), rast, tris, backend=backend) == 0).all()
    rast = rasterize(torch.zeros((0, 4)), tris, (3, 3), backend=backend)
    assert rast.shape == (1, 3, 3, 4) and (rast == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_images_are_independent(backend):
    rng = np.random.default_rng(2)
    clips = [random_soup(rng, 10, (0.5, 2.0)) for _ in range(3)]
    tris = torch.arange(30).reshape(10, 3)
    batched = rasterize(torch.tensor(np.stack(clips)), tris, (10, 14), backend=backend)
    attr = torch.rand(3, 30, 2, dtype=torch.float64)
    batched_attr = interpolate(attr, batched, tris, backend=backend)
    for i, clip in enumerate(clips):
        single = rasterize(torch.tensor(clip), tris, (10, 14), backend=backend)
        torch.testing.assert_close(batched[i:i + 1], single)
        torch.testing.assert_close(batched_attr[i:i + 1], interpolate(attr[i], single, tris, backend=backend))


def test_image_rows_follow_ndc_y():
    # a triangle at NDC y < 0 must land in the first rows (row 0 = NDC y = -1), x < 0 in the first columns
    clip = torch.tensor([[-1.0, -1.0, 0, 1], [-0.2, -1.0, 0, 1], [-1.0, -0.2, 0, 1]])
    drawn = rasterize(clip, torch.tensor([[0, 1, 2]]), (10, 10), backend="cpu")[0, ..., 3] > 0
    assert drawn[:4, :4].any() and not drawn[5:].any() and not drawn[:, 5:].any()


@pytest.mark.parametrize("bad, message", [
    (dict(clip_pos=torch.zeros(5, 3)), "clip_pos must be"),
    (dict(clip_pos=torch.zeros(5, 4, dtype=torch.int64)), "clip_pos must be"),
    (dict(clip_pos=torch.full((5, 4), float("nan"))), "NaN"),
    (dict(tris=torch.tensor([[0, 1, 5]])), "only 5 vertices"),
    (dict(tris=torch.tensor([[0, 1, -1]])), "vertices -1"),
    (dict(tris=torch.tensor([[0.0, 1.0, 2.0]])), "int32/int64"),
    (dict(tris=torch.tensor([0, 1, 2])), "int32/int64"),
    (dict(resolution=(0, 4)), "resolution"),
    (dict(resolution=(4.5, 4)), "resolution"),
    (dict(resolution=(4, 4, 4)), "resolution"),
    (dict(resolution=(4, 100000)), "resolution"),
    (dict(backend="opengl"), "unknown rasterizer backend"),
])
def test_rasterize_rejects_bad_input(bad, message):
    args = dict(clip_pos=torch.zeros(5, 4), tris=torch.tensor([[0, 1, 2]]), resolution=(4, 4), backend="cpu")
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        rasterize(args.pop("clip_pos"), args.pop("tris"), args.pop("resolution"), **args)


def test_interpolate_rejects_mismatched_batch():
    rast = rasterize(torch.zeros(2, 3, 4), torch.tensor([[0, 1, 2]]), (4, 4), backend="cpu")
    with pytest.raises(ValueError, match="batch"):
        interpolate(torch.zeros(3, 3, 1), rast, torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="rast must be"):
        interpolate(torch.zeros(3, 1), rast[..., :3], torch.tensor([[0, 1, 2]]))


def test_backend_selection():
    assert "cpu" in available_backends()
    assert resolve_backend("cpu") == "cpu"
    assert resolve_backend("auto", "cpu") == "cpu"
    if "nvdiffrast" not in available_backends():
        with pytest.raises(RuntimeError, match="nvdiffrast"):
            resolve_backend("nvdiffrast")
    with pytest.raises(ValueError):
        resolve_backend("vulkan")


def test_topology_neighbours():
    # closed octahedron: every edge has exactly one neighbour, and the relation is symmetric
    octa = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    nb = build_topology(torch.tensor(octa)).neighbours
    assert (nb >= 0).all()
    for f in range(8):
        for k in range(3):
            edge = {octa[f, (k + 1) % 3], octa[f, (k + 2) % 3]}
            g = nb[f, k]
            assert g != f and edge <= set(octa[g]) and f in nb[g]
    # open strip: boundary edges have no neighbour; a non-manifold edge (three faces) counts as boundary
    nb = build_topology(np.array([[0, 1, 2], [2, 1, 3], [1, 2, 4]])).neighbours
    assert (nb == -1).sum() == 9
    nb = build_topology(np.array([[0, 1, 2], [2, 1, 3]])).neighbours
    assert nb.tolist() == [[1, -1, -1], [-1, -1, 0]]
    with pytest.raises(ValueError, match="negative"):
        build_topology(np.array([[0, 1, -2]]))


def test_docstring_examples():
    import doctest

    from dyntet.render import raster, raster_topology

    for module in (raster, raster_topology):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__
