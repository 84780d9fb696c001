"""Triangle adjacency for antialiasing: which triangle lies across each edge.

:func:`dyntet.render.raster.antialias` blends colours only across *silhouette* edges — mesh boundaries
and edges whose two triangles fold onto the same side in the image (one faces the camera, the other
away). Deciding that needs the triangle across every edge. The adjacency depends on the faces only, so
build it once per topology (DynTet's marching-tets faces change only when the SDF's signs do) and pass
it to every ``antialias`` call; nvdiffrast's topology hash plays the same role and is cached here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numba import njit


@dataclass(eq=False)
class MeshTopology:
    """Edge adjacency of a triangle list (build it with :func:`build_topology`)."""

    neighbours: np.ndarray
    """int64 [F, 3]: the triangle across edge k of triangle f, where edge k joins the two vertices other
    than vertex k; -1 on boundary edges and on non-manifold edges (shared by more than two triangles),
    which are then always treated as silhouettes."""
    num_vertices: int
    """V at build time (an upper bound of the vertex indices)."""
    backend_cache: dict[str, Any] = field(default_factory=dict, repr=False)
    """Per-backend precomputations (e.g. nvdiffrast's topology hash), filled lazily by the backends."""

    @property
    def num_faces(self) -> int:
        return int(self.neighbours.shape[0])


def build_topology(tris: torch.Tensor | np.ndarray, num_vertices: int | None = None) -> MeshTopology:
    """Adjacency of ``tris`` (int [F, 3]) in O(F) time (a counting sort of edges by their lower vertex).

    Example:
        >>> topo = build_topology(np.array([[0, 1, 2], [2, 1, 3]]))
        >>> topo.neighbours.tolist()   # they share vertices 1, 2: edge 0 of the first, edge 2 of the second
        [[1, -1, -1], [-1, -1, 0]]
    """
    tris_f3 = tris.detach().cpu().numpy() if isinstance(tris, torch.Tensor) else np.asarray(tris)
    if tris_f3.ndim != 2 or tris_f3.shape[1] != 3 or not np.issubdtype(tris_f3.dtype, np.integer):
        raise ValueError(f"tris must be an integer array [F, 3], got {tris_f3.dtype} {tuple(tris_f3.shape)}")
    tris_f3 = np.ascontiguousarray(tris_f3, dtype=np.int64)
    if tris_f3.size and tris_f3.min() < 0:
        raise ValueError("tris contains negative vertex indices")
    if num_vertices is None:
        num_vertices = int(tris_f3.max()) + 1 if tris_f3.size else 0
    elif tris_f3.size and tris_f3.max() >= num_vertices:
        raise ValueError(f"tris refers to vertex {int(tris_f3.max())} but num_vertices is {num_vertices}")
    return MeshTopology(_edge_neighbours(tris_f3, num_vertices), num_vertices)


@njit(cache=True)
def _edge_neighbours(tris, num_vertices):
    num_faces = tris.shape[0]
    start = np.zeros(num_vertices + 1, np.int64)
    for f in range(num_faces):
        for k in range(3):
            a = tris[f, (k + 1) % 3]
            b = tris[f, (k + 2) % 3]
            start[min(a, b) + 1] += 1
    for v in range(num_vertices):
        start[v + 1] += start[v]
    fill = start[:-1].copy()
    upper = np.empty(3 * num_faces, np.int64)
    slot = np.empty(3 * num_faces, np.int64)  # 3 * f + k
    for f in range(num_faces):
        for k in range(3):
            a = tris[f, (k + 1) % 3]
            b = tris[f, (k + 2) % 3]
            lo = min(a, b)
            j = fill[lo]
            fill[lo] += 1
            upper[j] = max(a, b)
            slot[j] = 3 * f + k
    neighbours = np.full((num_faces, 3), -1, np.int64)
    for v in range(num_vertices):
        for i in range(start[v], start[v + 1]):
            matches = 0
            other = -1
            for j in range(start[v], start[v + 1]):
                if j != i and upper[j] == upper[i]:
                    matches += 1
                    other = slot[j] // 3
            if matches == 1:
                neighbours[slot[i] // 3, slot[i] % 3] = other
    return neighbours
