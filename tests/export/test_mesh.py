"""UV-seam splitting and smooth normals."""

from __future__ import annotations

import numpy as np

from dyntet.export.mesh import split_uv_seams, vertex_normals
from dyntet.export.synthetic import AXES_M
from dyntet.formats.sequence import Sequence


def test_split_keeps_every_corner(seq: Sequence) -> None:
    split = split_uv_seams(seq.faces, seq.uv_faces)
    # Each face corner of the split mesh points at the same vertex and UV as before.
    np.testing.assert_array_equal(split.vertex[split.faces], seq.faces)
    np.testing.assert_array_equal(split.uv[split.faces], seq.uv_faces)
    pairs = {(v, u) for v, u in zip(seq.faces.ravel(), seq.uv_faces.ravel())}
    assert split.num_vertices == len(pairs)
    # The ellipsoid's seam at the back: one extra vertex per seam ring, plus the pole fans.
    assert seq.num_vertices < split.num_vertices


def test_split_without_seams_is_the_identity() -> None:
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    split = split_uv_seams(faces, faces)
    assert split.vertex.tolist() == [0, 1, 2, 3] and split.faces.tolist() == faces.tolist()


def test_normals_of_the_ellipsoid_point_outwards(seq: Sequence) -> None:
    rest = seq.vertices[0]
    normals = vertex_normals(rest, seq.faces)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-6)
    analytic = rest / AXES_M ** 2
    analytic /= np.linalg.norm(analytic, axis=1, keepdims=True)
    cos = (normals * analytic).sum(1)
    assert cos.min() > 0.9  # coarse 12×16 mesh with deformations; still the surface normal
    batched = vertex_normals(seq.vertices[:2], seq.faces)
    np.testing.assert_allclose(batched[0], normals, atol=1e-6)


def test_isolated_vertex_gets_a_unit_normal() -> None:
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]], np.float32)
    normals = vertex_normals(verts, np.array([[0, 1, 2]]))
    np.testing.assert_allclose(normals[:3], [[0, 0, 1]] * 3)
    np.testing.assert_allclose(normals[3], [0, 1, 0])
