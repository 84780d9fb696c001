"""Marching Tetrahedra split in two, as DynTet needs it (Zhang et al., CVPR 2024, Eqs. 1, 5, 6).

* :func:`topology` looks only at the *signs* of the SDF: which grid edges cross the surface (the mesh
  vertices) and how they connect (the faces). It runs once per SDF, outside autograd.
* :func:`decode` places the mesh vertices on those edges by linear interpolation of the SDF. It is a
  gather and a lerp, differentiable w.r.t. the SDF and the grid positions, and may be batched over frames.

Because the faces depend on the SDF signs only, every frame decoded with per-frame offsets shares one
topology (Eq. 6): ``lerp(v_a + dv_a, v_b + dv_b) = lerp(v_a, v_b) + lerp(dv_a, dv_b)`` with the same
weights. Convention: a grid vertex is *inside* when ``sdf < 0``; faces are counter-clockwise seen from
outside, so their normals point towards increasing SDF.

The case table is derived here from geometry (no table is copied): for each of the 16 inside/outside
patterns of a tet, the crossing edges of a reference tet are joined into one triangle (1 or 3 inside)
or a quad cut into two triangles (2 inside), each wound so its normal follows the gradient of the
linearly interpolated SDF. Every grid tet is positively oriented, i.e. an orientation-preserving affine
image of the reference, and the cross-section is a convex polygon for any crossing positions, so the
winding carries over to every tet and every SDF with the same signs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .tetgrid import LOCAL_EDGES, TetGrid


@dataclass(frozen=True)
class MarchingTopology:
    """The sign-only part of Marching Tetrahedra: shared by every frame decoded from one SDF.

    Attributes:
        edge_vertices: int64 [E', 2] grid-vertex pairs ``(a, b)``, ``a < b``, of the edges whose
            endpoints differ in sign; mesh vertex ``i`` lies on edge ``edge_vertices[i]``.
        faces: int64 [F, 3] indices into the E' mesh vertices, counter-clockwise seen from outside.
        face_tets: int64 [F] the grid tet each face was cut from (one or two faces per cut tet).
        num_grid_vertices: V of the grid, checked by :func:`decode`.
    """

    edge_vertices: torch.Tensor
    faces: torch.Tensor
    face_tets: torch.Tensor
    num_grid_vertices: int

    @property
    def num_vertices(self) -> int:
        """E', the number of mesh vertices."""
        return self.edge_vertices.shape[0]

    @property
    def num_faces(self) -> int:
        return self.faces.shape[0]

    def to(self, device: torch.device | str) -> MarchingTopology:
        return replace(self, edge_vertices=self.edge_vertices.to(device), faces=self.faces.to(device),
                       face_tets=self.face_tets.to(device))

    def compact(self) -> tuple[torch.Tensor, MarchingTopology]:
        """The grid vertices the mesh needs, and this topology re-indexed to them.

        Networks then run on the U endpoints of crossing edges instead of all V grid vertices:
        ``decode(local, vertices[used], sdf[used], offsets_on_used)`` equals
        ``decode(self, vertices, sdf, offsets)``. A mask and a prefix sum, no sort.

        Returns:
            ``used``: int64 [U] ascending grid-vertex indices; ``local``: the topology with
            ``edge_vertices`` indexing ``used`` and ``num_grid_vertices = U`` (faces unchanged).
        """
        device = self.edge_vertices.device
        mask = torch.zeros(self.num_grid_vertices, dtype=torch.bool, device=device)
        mask[self.edge_vertices.reshape(-1)] = True
        used = mask.nonzero().squeeze(1)
        new_index = torch.cumsum(mask, 0) - 1
        local = replace(self, edge_vertices=new_index[self.edge_vertices], num_grid_vertices=used.shape[0])
        return used, local


def _case_table() -> tuple[np.ndarray, np.ndarray]:
    """Triangles per sign pattern, derived from a reference tet.

    Returns:
        counts: int64 [16] number of triangles (0, 1 or 2) for pattern ``code = sum(inside_k << k)``.
        triangles: int64 [16, 2, 3] local edge indices (into :data:`LOCAL_EDGES`) of each triangle,
            -1 where a pattern has fewer triangles.
    """
    reference = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)  # det = +1
    edge_of = {pair: k for k, pair in enumerate(LOCAL_EDGES)}

    def edge(i: int, j: int) -> int:
        return edge_of[(min(i, j), max(i, j))]

    counts = np.zeros(16, dtype=np.int64)
    triangles = np.full((16, 2, 3), -1, dtype=np.int64)
    for code in range(16):
        inside = [k for k in range(4) if code >> k & 1]
        outside = [k for k in range(4) if not code >> k & 1]
        if len(inside) in (1, 3):
            lone, rest = (inside[0], outside) if len(inside) == 1 else (outside[0], inside)
            loops = [[edge(lone, k) for k in rest]]
        elif len(inside) == 2:
            (a, b), (c, d) = inside, outside
            # The cross-section is the quad ac-ad-bd-bc (consecutive corners share a tet face).
            loops = [[edge(a, c), edge(a, d), edge(b, d)], [edge(a, c), edge(b, d), edge(b, c)]]
        else:
            continue
        sdf = np.where([code >> k & 1 for k in range(4)], -1.0, 1.0)
        gradient = sdf[1:] - sdf[0]  # gradient of the linear interpolant on the reference tet
        for t, loop in enumerate(loops):
            mid = [reference[list(LOCAL_EDGES[e])].mean(0) for e in loop]
            if np.dot(np.cross(mid[1] - mid[0], mid[2] - mid[0]), gradient) < 0:
                loop = [loop[0], loop[2], loop[1]]
            triangles[code, t] = loop
        counts[code] = len(loops)
    return counts, triangles


_COUNTS, _TRIANGLES = _case_table()
_TABLES: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}


def _tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if device not in _TABLES:
        _TABLES[device] = (torch.from_numpy(_COUNTS).to(device), torch.from_numpy(_TRIANGLES).to(device))
    return _TABLES[device]


@dataclass(frozen=True)
class Candidates:
    """The only tets and edges that may be cut: int64 ascending ids into ``grid.tets`` / ``grid.edges``.

    Build it with :func:`candidates` when only some vertices' signs can change; :func:`topology`
    then reads just these and returns exactly what the whole grid would give.
    """

    tets: torch.Tensor
    edges: torch.Tensor
    corners: torch.Tensor
    """int64 [T', 4]: ``grid.tets[tets]``, gathered once."""
    ends: torch.Tensor
    """int64 [E', 2]: ``grid.edges[edges]``, gathered once."""


@torch.no_grad()
def candidates(grid: TetGrid, sdf: torch.Tensor, free: torch.Tensor) -> Candidates:
    """Tets and edges that touch a ``free`` vertex (bool [V]: its sign may change) or are cut now.

    Elsewhere every corner keeps the sign it has in ``sdf``, so what is not cut now never will be.
    """
    inside = sdf < 0
    corners = inside[grid.tets]
    cut = corners.any(1) & ~corners.all(1)
    crossing = inside[grid.edges[:, 0]] != inside[grid.edges[:, 1]]
    tets = (free[grid.tets].any(1) | cut).nonzero()[:, 0]
    edges = (free[grid.edges].any(1) | crossing).nonzero()[:, 0]
    return Candidates(tets=tets, edges=edges, corners=grid.tets[tets], ends=grid.edges[edges])


@torch.no_grad()
def topology(grid: TetGrid, sdf: torch.Tensor, within: Candidates | None = None) -> MarchingTopology:
    """Mesh vertices (crossing edges) and faces of the zero level set, from the SDF signs alone.

    Args:
        grid: the tetrahedral grid (positively oriented tets, edge tables).
        sdf: float [V] signed distance per grid vertex; inside where ``sdf < 0`` (0 counts as outside).
            Only the signs are read; gradients never flow through this function.
        within: look only at these tets and edges (the caller guarantees no other can be cut).

    Returns:
        The :class:`MarchingTopology` (on the grid's device). The mesh is closed when no crossing edge
        lies on the grid boundary (e.g. the SDF is positive on the cube's faces).

    Raises:
        ValueError: when ``sdf`` has the wrong shape, dtype or device, or holds NaN / inf.

    One tet with one vertex inside gives one triangle on its three edges from that vertex:

    >>> grid = TetGrid.from_tets([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 1, 2, 3]], 1)
    >>> topo = topology(grid, torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    >>> topo.edge_vertices.tolist(), topo.faces.tolist()
    ([[0, 1], [0, 2], [0, 3]], [[0, 1, 2]])
    """
    _check_sdf(grid, sdf)
    inside_v = sdf < 0
    inside_u8 = inside_v.to(torch.uint8)

    # Mesh vertices: one per grid edge whose endpoints differ in sign, numbered in edge order.
    edges = grid.edges if within is None else within.ends
    crossing_e = inside_v[edges[:, 0]] != inside_v[edges[:, 1]]
    edge_ids = crossing_e.nonzero().squeeze(1)
    if within is not None:
        edge_ids = within.edges[edge_ids]
    mesh_vertex_of_edge = torch.full((grid.edges.shape[0],), -1, dtype=torch.int64, device=sdf.device)
    mesh_vertex_of_edge[edge_ids] = torch.arange(edge_ids.shape[0], device=sdf.device)

    # Sign pattern of each tet, then the cut tets' triangles from the case table.
    corners_tx4 = inside_u8[grid.tets if within is None else within.corners]
    code_t = corners_tx4[:, 0] | corners_tx4[:, 1] << 1 | corners_tx4[:, 2] << 2 | corners_tx4[:, 3] << 3
    cut = ((code_t != 0) & (code_t != 15)).nonzero().squeeze(1)
    cut_tets = cut if within is None else within.tets[cut]
    counts, triangles = _tables(sdf.device)
    code_c = code_t[cut].long()
    local_cx2x3 = triangles[code_c]
    keep_cx2 = torch.arange(2, device=sdf.device) < counts[code_c, None]
    tet_edges_cx6 = grid.tet_edges[cut_tets]
    global_cx2x3 = torch.gather(tet_edges_cx6, 1, local_cx2x3.clamp(min=0).reshape(-1, 6)).reshape(-1, 2, 3)
    faces = mesh_vertex_of_edge[global_cx2x3[keep_cx2]]
    face_tets = cut_tets[:, None].expand(-1, 2)[keep_cx2]
    return MarchingTopology(edge_vertices=grid.edges[edge_ids], faces=faces, face_tets=face_tets,
                            num_grid_vertices=grid.num_vertices)


def decode(topo: MarchingTopology, vertices: torch.Tensor, sdf: torch.Tensor,
           offsets: torch.Tensor | None = None, *, check_signs: bool = True) -> torch.Tensor:
    """Mesh vertex positions: the zero crossing of the linearly interpolated SDF on each crossing edge.

    For an edge ``(a, b)`` with ``s_a``, ``s_b`` of opposite signs the point is
    ``(s_a v_b - s_b v_a) / (s_a - s_b)`` (weight ``s_a / (s_a - s_b)`` on ``v_b``), which lies on the
    segment where ``s_a + t (s_b - s_a) = 0``. The paper's typeset Eq. 1 swaps ``v_a`` and ``v_b``.

    Both forms of Eq. 6 are accepted and agree: deformed positions ``vertices = grid + dv`` with no
    ``offsets``, or the undeformed grid in ``vertices`` and ``dv`` in ``offsets`` (then the grid part
    is interpolated once and shared across the batch).

    Args:
        topo: from :func:`topology` with the same signs as ``sdf``.
        vertices: float [V, 3] or [B, V, 3] grid-vertex positions.
        sdf: float [V] signed distances (the ones the topology was built from).
        offsets: optional float [V, 3] or [B, V, 3] per-vertex offsets added after interpolation.
        check_signs: verify that ``sdf`` still has opposite signs on every crossing edge (one cheap
            reduction; pass False in hot loops that just called :func:`topology` with this ``sdf``).

    Returns:
        float [B, E', 3] mesh vertices when ``vertices`` or ``offsets`` is batched, else [E', 3]; in the
        promoted dtype of the inputs. Differentiable w.r.t. ``vertices``, ``sdf`` and ``offsets``.

    Raises:
        ValueError: for mismatched shapes, or (with ``check_signs``) an SDF whose signs differ from the
            topology's.

    >>> grid = TetGrid.from_tets([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 1, 2, 3]], 1)
    >>> sdf = torch.tensor([-1.0, 1.0, 3.0, 1.0])
    >>> decode(topology(grid, sdf), grid.vertices, sdf).tolist()
    [[0.5, 0.0, 0.0], [0.0, 0.25, 0.0], [0.0, 0.0, 0.5]]
    """
    _check_points("vertices", vertices, topo.num_grid_vertices)
    if offsets is not None:
        _check_points("offsets", offsets, topo.num_grid_vertices)
    if sdf.shape != (topo.num_grid_vertices,):
        raise ValueError(f"sdf must be [V] = [{topo.num_grid_vertices}], got {list(sdf.shape)}")
    a, b = topo.edge_vertices[:, 0], topo.edge_vertices[:, 1]
    s_a, s_b = sdf[a], sdf[b]
    if check_signs and topo.num_vertices and bool(((s_a < 0) == (s_b < 0)).any()):
        raise ValueError("sdf has the same sign at both ends of a crossing edge: the topology was built "
                         "from a different SDF; call topology() again")
    w_b = (s_a / (s_a - s_b))[:, None]
    w_a = 1 - w_b
    points = _lerp(vertices, a, b, w_a, w_b)
    if offsets is not None:
        points = points + _lerp(offsets, a, b, w_a, w_b)
    return points


def _lerp(values: torch.Tensor, a: torch.Tensor, b: torch.Tensor, w_a: torch.Tensor,
          w_b: torch.Tensor) -> torch.Tensor:
    """``w_a * values[..., a, :] + w_b * values[..., b, :]`` for [V, 3] or [B, V, 3] values."""
    return w_a * values.index_select(-2, a) + w_b * values.index_select(-2, b)


def _check_sdf(grid: TetGrid, sdf: torch.Tensor) -> None:
    if not isinstance(sdf, torch.Tensor) or not sdf.is_floating_point():
        raise ValueError(f"sdf must be a floating-point tensor, got {getattr(sdf, 'dtype', type(sdf))}")
    if sdf.shape != (grid.num_vertices,):
        raise ValueError(f"sdf must be [V] = [{grid.num_vertices}] (one value per grid vertex), "
                         f"got {list(sdf.shape)}")
    if sdf.device != grid.device:
        raise ValueError(f"sdf is on {sdf.device} but the grid is on {grid.device}; use grid.to(...)")
    if not bool(torch.isfinite(sdf).all()):
        raise ValueError("sdf holds NaN or inf: the sign of such a vertex is undefined")


def _check_points(name: str, points: torch.Tensor, num_vertices: int) -> None:
    if points.dim() not in (2, 3) or points.shape[-2:] != (num_vertices, 3):
        raise ValueError(f"{name} must be [V, 3] or [B, V, 3] with V = {num_vertices}, "
                         f"got {list(points.shape)}")
