"""Geometry benchmark: tet grid build / cache load, marching-tets topology and decode at r = 128.

Sphere SDF of radius 0.3 on the r = 128 BCC grid; decode with random offsets of at most 1/(4r). Times are
medians of several runs after a warm-up. Targets: topology <= 250 ms, decode (B = 1) <= 10 ms.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from dyntet.geometry import decode, shapes, tet_grid, topology

RESOLUTION = 128
RADIUS = 0.3
REPEATS = 15


def _median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    fn()  # warm-up: allocator, first-call overheads
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def run() -> dict:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        tet_grid(RESOLUTION, Path(cache))
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        grid = tet_grid(RESOLUTION, Path(cache))
        load_s = time.perf_counter() - start
    print(f"grid r={RESOLUTION}: {grid.num_vertices} vertices, {grid.num_tets} tets, {grid.edges.shape[0]} edges; "
          f"build+save {build_s:.2f} s, cache load {load_s * 1e3:.0f} ms")

    sdf = shapes.sphere_sdf(grid.vertices, RADIUS)
    topology_ms = _median_ms(lambda: topology(grid, sdf))
    topo = topology(grid, sdf)
    print(f"topology: {topology_ms:.1f} ms ({topo.num_vertices} mesh vertices, {topo.num_faces} faces; "
          f"target <= 250 ms)")

    generator = torch.Generator().manual_seed(0)
    offsets = (torch.rand(8, grid.num_vertices, 3, generator=generator) - 0.5) * (0.5 / RESOLUTION)
    deformed = grid.vertices + offsets
    decode_b1 = _median_ms(lambda: decode(topo, deformed[0], sdf))
    decode_b8 = _median_ms(lambda: decode(topo, deformed, sdf))
    decode_b8_split = _median_ms(lambda: decode(topo, grid.vertices, sdf, offsets))
    print(f"decode: B=1 {decode_b1:.2f} ms (target <= 10 ms), B=8 {decode_b8:.2f} ms, "
          f"B=8 as grid + offsets (Eq. 6) {decode_b8_split:.2f} ms")

    sdf_leaf = sdf.clone().requires_grad_()
    offsets_leaf = offsets.clone().requires_grad_()

    def decode_backward() -> None:
        decode(topo, grid.vertices, sdf_leaf, offsets_leaf, check_signs=False).square().sum().backward()

    backward_b8 = _median_ms(decode_backward)
    print(f"decode + backward (B=8, grads to sdf and offsets): {backward_b8:.1f} ms")

    used, local = topo.compact()
    sdf_used = sdf[used].clone().requires_grad_()
    offsets_used = offsets[:, used].clone().requires_grad_()
    grid_used = grid.vertices[used]

    def compact_backward() -> None:
        decode(local, grid_used, sdf_used, offsets_used, check_signs=False).square().sum().backward()

    compact_backward_b8 = _median_ms(compact_backward)
    print(f"compact: the mesh needs {used.shape[0]} of {grid.num_vertices} grid vertices "
          f"({used.shape[0] / grid.num_vertices:.1%}); decode + backward on them (B=8): "
          f"{compact_backward_b8:.1f} ms")
    return {
        "grid_vertices_128": grid.num_vertices,
        "grid_tets_128": grid.num_tets,
        "grid_edges_128": int(grid.edges.shape[0]),
        "grid_build_s_128": round(build_s, 3),
        "grid_cache_load_ms_128": round(load_s * 1e3, 1),
        "mesh_vertices_sphere_128": topo.num_vertices,
        "mesh_faces_sphere_128": topo.num_faces,
        "topology_ms_128": round(topology_ms, 2),
        "decode_ms_128_b1": round(decode_b1, 3),
        "decode_ms_128_b8": round(decode_b8, 3),
        "decode_ms_128_b8_offsets": round(decode_b8_split, 3),
        "decode_backward_ms_128_b8": round(backward_b8, 2),
        "decode_backward_compact_ms_128_b8": round(compact_backward_b8, 2),
        "torch_threads": torch.get_num_threads(),
    }
