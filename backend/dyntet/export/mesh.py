"""Per-vertex data the interchange formats need: UV-seam splitting and smooth normals.

glTF (like every GPU format) stores one UV per vertex, while a sequence stores UVs per face corner so a
seam never splits the *geometry*. Export therefore splits each vertex once per distinct UV it meets; all
morph targets and frames must use the same split, which :class:`SeamSplit` carries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SeamSplit:
    """A vertex split at UV seams: output vertex s is sequence vertex ``vertex[s]`` with UV ``uv[s]``."""

    vertex: np.ndarray
    """int64 [S]: the sequence vertex of each split vertex."""
    uv: np.ndarray
    """int64 [S]: the UV index of each split vertex."""
    faces: np.ndarray
    """int64 [F, 3]: the faces over split vertices (same order and winding as the input faces)."""

    @property
    def num_vertices(self) -> int:
        return int(self.vertex.shape[0])


def split_uv_seams(faces: np.ndarray, uv_faces: np.ndarray) -> SeamSplit:
    """Build the unique (vertex, uv) corner pairs of a mesh.

    Args:
        faces: int [F, 3] vertex indices.
        uv_faces: int [F, 3] UV indices of the same corners.

    Returns:
        The :class:`SeamSplit`; split vertices are ordered by (vertex, uv), so vertex order is kept
        where there is no seam.

    >>> split = split_uv_seams(np.array([[0, 1, 2], [0, 2, 3]]), np.array([[0, 1, 2], [4, 2, 3]]))
    >>> split.vertex.tolist(), split.uv.tolist(), split.faces.tolist()
    ([0, 0, 1, 2, 3], [0, 4, 1, 2, 3], [[0, 2, 3], [1, 3, 4]])
    """
    faces = np.asarray(faces)
    uv_faces = np.asarray(uv_faces)
    if faces.shape != uv_faces.shape or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces and uv_faces must both be [F, 3], got {faces.shape} and {uv_faces.shape}")
    v = faces.reshape(-1).astype(np.int64)
    u = uv_faces.reshape(-1).astype(np.int64)
    key = v * (int(u.max(initial=0)) + 1) + u
    unique_keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return SeamSplit(vertex=v[first], uv=u[first], faces=inverse.reshape(faces.shape).astype(np.int64))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted smooth vertex normals.

    Args:
        vertices: float [..., V, 3] positions (a leading frame axis is allowed).
        faces: int [F, 3], counter-clockwise from outside.

    Returns:
        float32 [..., V, 3] unit normals; a vertex in no face (or only degenerate ones) gets +Y.
    """
    pts = np.asarray(vertices, dtype=np.float64)
    if pts.ndim > 2:
        flat = pts.reshape(-1, *pts.shape[-2:])
        return np.stack([vertex_normals(frame, faces) for frame in flat]).reshape(pts.shape)
    faces = np.asarray(faces)
    a, b, c = (pts[faces[:, i]] for i in range(3))
    face_n = np.cross(b - a, c - a)                        # length = 2 × area: area weighting for free
    corners = faces.reshape(-1)
    acc = np.stack([np.bincount(corners, weights=np.repeat(face_n[:, k], 3), minlength=len(pts))
                    for k in range(3)], -1)
    length = np.linalg.norm(acc, axis=-1, keepdims=True)
    safe = length > 1e-20
    out = np.where(safe, acc / np.where(safe, length, 1.0), np.array([0.0, 1.0, 0.0]))
    return out.astype(np.float32)
