"""Triangles of the MediaPipe face mesh, recovered from the edge set the wheel ships.

MediaPipe 0.10.21 exposes its face-mesh topology only as ``FACEMESH_TESSELATION``, a set of 2556
directed pairs (1322 undirected edges, with inconsistent directions); the canonical model file with
its 898 triangles is not in the wheel. Recovering faces from edges:

1. Every 3-cycle of the edge graph is a candidate (854). Two are not faces: around the two vertices of
   degree 3 (102 and 331, under the nose) the four points form a K4, and the outer 3-cycle encloses
   the inner vertex — we drop a 3-cycle when some vertex's whole neighbourhood is its three corners.
   That leaves **852 surface triangles**: a manifold with Euler characteristic −2, i.e. a disc with
   three holes — both eyes (16 boundary edges each) and the mouth (20) — inside the face oval (36).
2. The eye and mouth holes are closed like the canonical model (14 + 14 + 18 = 46 more triangles,
   898 in all): the SDF prior then has a surface over the eyeballs and between the lips, as a BFM
   has. Filling uses a minimum-perimeter triangulation of each hole in a fixed planar layout.
3. Orientation: faces are made consistent by walking across shared edges, then counter-clockwise
   as seen from outside. "Outside" is fixed without geometry: a Tutte embedding of the mesh with the
   face oval on a circle — forehead (10) at the top, the subject's left cheek (454) at +X — is a
   frontal view from +Z, so counter-clockwise there is counter-clockwise from outside.

The surface triangles come first, then the 46 fill triangles (mouth, then both eyes), so a consumer can
tell them apart by index (:data:`NUM_SURFACE_TRIANGLES`). The 10 iris points (468–477) belong to no
triangle. Everything is computed once per process and is the same for every subject.
"""

from __future__ import annotations

import functools
from collections import defaultdict

import numpy as np

NUM_MESH_POINTS = 468
"""Face-mesh surface points (the iris points 468–477 are not part of the surface)."""
NUM_SURFACE_TRIANGLES = 852
NUM_TRIANGLES = 898
FOREHEAD, CHIN, RIGHT_CHEEK, LEFT_CHEEK = 10, 152, 234, 454
"""Face-oval landmarks (subject's right/left) that fix the layout's orientation."""


def _edges() -> set[tuple[int, int]]:
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    return {(min(a, b), max(a, b)) for a, b in FACEMESH_TESSELATION if a != b}


def surface_triangles_unoriented(edges: set[tuple[int, int]] | None = None) -> np.ndarray:
    """The 852 faces among the 3-cycles of the tessellation edges.

    Returns:
        int64 [F, 3] vertex indices, each row sorted ascending (no orientation yet), rows sorted.
    """
    edges = _edges() if edges is None else edges
    neighbours: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    cycles = set()
    for a, b in edges:
        for c in neighbours[a] & neighbours[b]:
            cycles.add(tuple(sorted((a, b, c))))
    # A 3-cycle is not a face when it encloses a vertex whose only neighbours are its corners.
    enclosing = {tuple(sorted(neighbours[v])) for v in neighbours if len(neighbours[v]) == 3}
    faces = sorted(c for c in cycles if c not in enclosing)
    return np.array(faces, np.int64)


def orient_consistently(triangles: np.ndarray) -> np.ndarray:
    """Flip triangles so neighbours traverse their shared edge in opposite directions.

    Args:
        triangles: int [F, 3] of a manifold (every edge in at most two triangles).

    Returns:
        int64 [F, 3]; the first triangle of each connected part keeps its order.
    """
    tris = np.array(triangles, np.int64)
    by_edge: dict[tuple[int, int], list[int]] = defaultdict(list)
    for f, tri in enumerate(tris):
        for i in range(3):
            a, b = int(tri[i]), int(tri[(i + 1) % 3])
            by_edge[(min(a, b), max(a, b))].append(f)
    if any(len(fs) > 2 for fs in by_edge.values()):
        raise ValueError("triangles are not a manifold: an edge has more than two faces")
    done = np.zeros(len(tris), bool)
    for seed in range(len(tris)):
        if done[seed]:
            continue
        done[seed] = True
        stack = [seed]
        while stack:
            f = stack.pop()
            tri = tris[f]
            for i in range(3):
                a, b = int(tri[i]), int(tri[(i + 1) % 3])
                for g in by_edge[(min(a, b), max(a, b))]:
                    if g == f or done[g]:
                        continue
                    other = tris[g]
                    # Consistent when g has the edge as b → a.
                    if any(int(other[j]) == a and int(other[(j + 1) % 3]) == b for j in range(3)):
                        tris[g] = other[::-1]
                    done[g] = True
                    stack.append(g)
    return tris


def boundary_loops(triangles: np.ndarray) -> list[list[int]]:
    """Boundary loops of a consistently oriented manifold, each as the vertex order its triangles walk.

    Returns:
        Loops sorted longest first; loop ``[v0, v1, …]`` has boundary edges ``v0→v1→…→v0``.
    """
    count: dict[tuple[int, int], int] = defaultdict(int)
    for tri in triangles:
        for i in range(3):
            a, b = int(tri[i]), int(tri[(i + 1) % 3])
            count[(a, b)] += 1
    nxt = {a: b for (a, b) in count if (b, a) not in count}
    loops, seen = [], set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        loops.append(loop)
    return sorted(loops, key=len, reverse=True)


def tutte_layout(triangles: np.ndarray, outer: list[int], outer_xy: np.ndarray, num_points: int) -> np.ndarray:
    """Planar (Tutte) embedding: ``outer`` pinned at ``outer_xy``, every other vertex at the mean of its
    neighbours. For a 3-connected planar mesh with a convex outer polygon no triangle folds over.

    Args:
        triangles: int [F, 3]; outer: boundary vertex ids; outer_xy: float [len(outer), 2].

    Returns:
        float64 [num_points, 2]; points in no triangle stay at the origin.
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    edges = set()
    for tri in np.asarray(triangles):
        for i in range(3):
            a, b = int(tri[i]), int(tri[(i + 1) % 3])
            edges.add((min(a, b), max(a, b)))
    layout = np.zeros((num_points, 2))
    layout[outer] = outer_xy
    free = np.array(sorted(set(np.unique(triangles).tolist()) - set(outer)))
    index = {int(v): i for i, v in enumerate(free)}
    diag = np.zeros(len(free))
    rows, cols = [], []
    rhs = np.zeros((len(free), 2))
    for a, b in edges:
        for u, w in ((a, b), (b, a)):
            if u in index:
                diag[index[u]] += 1
                if w in index:
                    rows.append(index[u])
                    cols.append(index[w])
                else:
                    rhs[index[u]] += layout[w]
    matrix = sp.csr_matrix((np.full(len(rows), -1.0), (rows, cols)), shape=(len(free), len(free)))
    solve = spla.factorized((matrix + sp.diags(diag)).tocsc())
    layout[free, 0] = solve(rhs[:, 0])
    layout[free, 1] = solve(rhs[:, 1])
    return layout


def _fill_polygon(polygon: list[int], layout: np.ndarray) -> list[tuple[int, int, int]]:
    """Minimum-perimeter triangulation of a polygon (vertex ids in walking order), in that order."""
    n = len(polygon)
    pts = layout[polygon]
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    cost = np.zeros((n, n))
    split = np.zeros((n, n), int)
    for gap in range(2, n):
        for i in range(n - gap):
            j = i + gap
            best, arg = np.inf, -1
            for k in range(i + 1, j):
                c = cost[i, k] + cost[k, j] + dist[i, k] + dist[k, j] + dist[i, j]
                if c < best - 1e-12:
                    best, arg = c, k
            cost[i, j], split[i, j] = best, arg
    out: list[tuple[int, int, int]] = []
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        k = split[i, j]
        out.append((polygon[i], polygon[k], polygon[j]))
        stack += [(i, k), (k, j)]
    return out


def _signed_area(layout: np.ndarray, tris: np.ndarray) -> np.ndarray:
    a, b, c = layout[tris[:, 0]], layout[tris[:, 1]], layout[tris[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


@functools.lru_cache(maxsize=2)
def _face_mesh_topology(fill_holes: bool) -> tuple[np.ndarray, np.ndarray]:
    surface = orient_consistently(surface_triangles_unoriented())
    loops = boundary_loops(surface)
    outer = loops[0]
    if CHIN not in outer or FOREHEAD not in outer or LEFT_CHEEK not in outer:
        raise RuntimeError("unexpected MediaPipe face-mesh topology: the face oval was not found")
    # Put the oval on the circle so that forehead is at the top and the subject's left at +X.
    start = outer.index(FOREHEAD)
    oval = outer[start:] + outer[:start]
    if oval.index(LEFT_CHEEK) > oval.index(CHIN):
        oval = [oval[0]] + oval[:0:-1]  # walk forehead → left cheek → chin → right cheek
    angle = np.pi / 2 - 2 * np.pi * np.arange(len(oval)) / len(oval)  # clockwise from the top: +X first
    layout = tutte_layout(surface, oval, np.stack([np.cos(angle), np.sin(angle)], 1), NUM_MESH_POINTS)
    if _signed_area(layout, surface).sum() < 0:
        surface = surface[:, ::-1]
    tris = [surface]
    if fill_holes:
        for loop in boundary_loops(surface)[1:]:
            # Fill triangles must walk each boundary edge opposite to the surface: reverse the loop.
            tris.append(np.array(_fill_polygon(loop[::-1], layout), np.int64))
    triangles = np.concatenate(tris).astype(np.int32)
    if (_signed_area(layout, triangles) <= 0).any():
        raise RuntimeError("face-mesh triangulation has inverted triangles in its layout")
    return triangles, layout.astype(np.float32)


def face_mesh_triangles(fill_holes: bool = True) -> np.ndarray:
    """Triangles over the MediaPipe face-mesh points, counter-clockwise seen from outside (+Z).

    Args:
        fill_holes: close the eyes and the mouth (898 triangles) or leave them open (852).

    Returns:
        int32 [F, 3] indices below 468; surface triangles first, then the fills.
    """
    return _face_mesh_topology(bool(fill_holes))[0].copy()


def face_mesh_layout() -> np.ndarray:
    """The fixed planar layout used to orient and fill: float32 [468, 2], a frontal view (+X subject's
    left, +Y up) of the mesh squashed into the unit disc."""
    return _face_mesh_topology(True)[1].copy()


def vertex_normals(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        points: float [P, 3]; triangles: int [F, 3], counter-clockwise from outside.

    Returns:
        float32 [P, 3]. Points in no triangle (the iris points) take the normal of their nearest
        point that is in one.
    """
    points = np.asarray(points, np.float64)
    tris = np.asarray(triangles, np.int64)
    a, b, c = points[tris[:, 0]], points[tris[:, 1]], points[tris[:, 2]]
    face_n = np.cross(b - a, c - a)
    normals = np.zeros_like(points)
    for i in range(3):
        np.add.at(normals, tris[:, i], face_n)
    length = np.linalg.norm(normals, axis=1)
    used = length > 0
    normals[used] /= length[used, None]
    if (~used).any() and used.any():
        from scipy.spatial import cKDTree

        _, nearest = cKDTree(points[used]).query(points[~used])
        normals[~used] = normals[used][nearest]
    return normals.astype(np.float32)
