"""Measures of triangle meshes: normals, area, enclosed volume, and a manifold / orientation report.

The model needs differentiable normals (shading uses the mesh's own normals, not predicted ones), and the
tests need honest measures to compare marching-tets meshes with analytic shapes. Functions accept one
mesh ``[V, 3]`` or a batch of meshes sharing faces ``[B, V, 3]`` (DynTet's frames share one topology),
and return results without or with the leading ``B`` accordingly. Faces are int [F, 3], counter-clockwise
seen from outside.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def face_normals(verts: torch.Tensor, faces: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Per-face normals ``(v1 - v0) x (v2 - v0)``.

    Args:
        verts: float [V, 3] or [B, V, 3] positions.
        faces: int [F, 3] vertex indices.
        normalize: unit length (degenerate faces give 0); else the length is twice the face area.

    Returns:
        float [F, 3] or [B, F, 3].

    >>> face_normals(torch.tensor([[0., 0, 0], [1, 0, 0], [0, 1, 0]]), torch.tensor([[0, 1, 2]])).tolist()
    [[0.0, 0.0, 1.0]]
    """
    _check(verts, faces)
    corners = _corners(verts, faces)
    normals = torch.linalg.cross(corners[1] - corners[0], corners[2] - corners[0], dim=-1)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-20) if normalize else normals


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (sum of incident faces' unnormalised normals, normalised).

    Args:
        verts: float [V, 3] or [B, V, 3] positions.
        faces: int [F, 3] vertex indices.

    Returns:
        float [V, 3] or [B, V, 3]; zero for vertices no face references.
    """
    normals_f = face_normals(verts, faces, normalize=False)
    batched = verts.dim() == 3
    normals_bf = normals_f if batched else normals_f[None]
    accum = torch.zeros(normals_bf.shape[0], verts.shape[-2], 3, dtype=normals_bf.dtype, device=verts.device)
    flat = faces.long().reshape(-1)
    accum = accum.index_add(1, flat, normals_bf.repeat_interleave(3, dim=1))
    accum = torch.nn.functional.normalize(accum, dim=-1, eps=1e-20)
    return accum if batched else accum[0]


def surface_area(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Total area: float scalar for [V, 3] input, float [B] for [B, V, 3]."""
    return 0.5 * face_normals(verts, faces, normalize=False).norm(dim=-1).sum(-1)


def enclosed_volume(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Signed volume enclosed by a closed, outward-oriented mesh (divergence theorem).

    ``sum_f v0 . (v1 x v2) / 6``; positive for outward faces, negative for inward ones, meaningless for
    open meshes. Scalar for [V, 3] input, [B] for [B, V, 3].

    >>> tet = torch.tensor([[0., 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    >>> float(enclosed_volume(tet, torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])))
    0.1666666716337204
    """
    _check(verts, faces)
    v0, v1, v2 = _corners(verts, faces)
    return (v0 * torch.linalg.cross(v1, v2, dim=-1)).sum((-1, -2)) / 6.0


@dataclass(frozen=True)
class ManifoldReport:
    """Edge-level health of a triangle mesh (see :func:`edge_manifold_report`)."""

    num_vertices: int
    """Distinct vertices referenced by faces."""
    num_edges: int
    """Distinct undirected edges."""
    num_faces: int
    boundary_edges: int
    """Edges used by one face: holes."""
    non_manifold_edges: int
    """Edges used by three or more faces."""
    misoriented_edges: int
    """Edges used by two faces in the same direction: neighbouring faces wound inconsistently."""
    degenerate_faces: int
    """Faces that repeat a vertex index."""

    @property
    def closed(self) -> bool:
        """No boundary edges."""
        return self.boundary_edges == 0

    @property
    def edge_manifold(self) -> bool:
        """Every edge used by exactly two faces (and no face repeats a vertex)."""
        return self.boundary_edges == 0 and self.non_manifold_edges == 0 and self.degenerate_faces == 0

    @property
    def consistently_oriented(self) -> bool:
        """Every edge used by two faces is traversed once in each direction."""
        return self.misoriented_edges == 0 and self.non_manifold_edges == 0

    @property
    def euler_characteristic(self) -> int:
        """V - E + F: 2 for a sphere, 0 for a torus, 2 - 2g for a closed surface of genus g."""
        return self.num_vertices - self.num_edges + self.num_faces


def edge_manifold_report(faces: torch.Tensor) -> ManifoldReport:
    """Count boundary, non-manifold and misoriented edges of a triangle mesh.

    Args:
        faces: int [F, 3] vertex indices.

    >>> report = edge_manifold_report(torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))
    >>> report.closed, report.edge_manifold, report.consistently_oriented, report.euler_characteristic
    (True, True, True, 2)
    """
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.is_floating_point():
        raise ValueError(f"faces must be int [F, 3], got {faces.dtype} {list(faces.shape)}")
    faces = faces.long().cpu()
    degenerate = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 2] == faces[:, 0])
    directed = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    directed = directed[~degenerate.repeat(3)]
    num_v = int(faces.max()) + 1 if faces.numel() else 0
    low, high = directed.min(1).values, directed.max(1).values
    forward = directed[:, 0] < directed[:, 1]
    keys, inverse, uses = torch.unique(low * num_v + high, return_inverse=True, return_counts=True)
    forward_uses = torch.zeros_like(uses).index_add_(0, inverse, forward.long())
    pairs = uses == 2
    return ManifoldReport(
        num_vertices=int(torch.unique(faces).numel()),
        num_edges=int(keys.numel()),
        num_faces=int(faces.shape[0]),
        boundary_edges=int((uses == 1).sum()),
        non_manifold_edges=int((uses > 2).sum()),
        misoriented_edges=int((pairs & (forward_uses != 1)).sum()),
        degenerate_faces=int(degenerate.sum()),
    )


def faceting_deg(verts: torch.Tensor, faces: torch.Tensor) -> float:
    """Mean angle in degrees between the normals of triangles that share an edge.

    A smooth surface sampled finely gives small angles; marching tets on a coarse lattice gives a
    zig-zag of creases that shading shows as facets. Edges shared by other than two faces are skipped.

    >>> square = torch.tensor([[0., 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    >>> round(faceting_deg(square, torch.tensor([[0, 1, 2], [0, 2, 3]])), 6)
    0.0
    """
    _check(verts, faces)
    faces = faces.long()
    normals = face_normals(verts.detach().double(), faces)
    num_v = int(verts.shape[0])
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    keys = edges.min(1).values * num_v + edges.max(1).values
    owner = torch.arange(faces.shape[0], device=faces.device).repeat(3)
    keys, order = torch.sort(keys)
    owner = owner[order]
    _, counts = torch.unique_consecutive(keys, return_counts=True)
    first = torch.cumsum(counts, 0) - counts
    pairs = first[counts == 2]
    if pairs.numel() == 0:
        return float("nan")
    cos = (normals[owner[pairs]] * normals[owner[pairs + 1]]).sum(-1).clamp(-1.0, 1.0)
    return float(torch.rad2deg(torch.acos(cos)).mean())


def remove_unreferenced(verts: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Drop vertices no face uses and renumber the faces.

    Args:
        verts: float [V, 3] or [B, V, 3].
        faces: int [F, 3].

    Returns:
        ``(verts [V', 3] or [B, V', 3], faces int64 [F, 3], kept int64 [V'])`` where ``kept`` are the
        old indices of the surviving vertices in their original order.
    """
    _check(verts, faces)
    used = torch.zeros(verts.shape[-2], dtype=torch.bool, device=faces.device)
    used[faces.reshape(-1).long()] = True
    kept = used.nonzero().squeeze(1)
    new_index = torch.full((verts.shape[-2],), -1, dtype=torch.int64, device=faces.device)
    new_index[kept] = torch.arange(kept.shape[0], device=faces.device)
    return verts.index_select(-2, kept.to(verts.device)), new_index[faces.long()], kept


def _corners(verts: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three corner positions of every face, each float [F, 3] or [B, F, 3]."""
    faces = faces.long()
    return tuple(verts.index_select(-2, faces[:, k]) for k in range(3))  # type: ignore[return-value]


def _check(verts: torch.Tensor, faces: torch.Tensor) -> None:
    if verts.dim() not in (2, 3) or verts.shape[-1] != 3 or not verts.is_floating_point():
        raise ValueError(f"verts must be float [V, 3] or [B, V, 3], got {verts.dtype} {list(verts.shape)}")
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.is_floating_point():
        raise ValueError(f"faces must be int [F, 3], got {faces.dtype} {list(faces.shape)}")
    # Index ranges are left to index_select (it raises on the CPU); scanning here would sync a GPU.
