"""Face-mesh triangles recovered from MediaPipe's edge set: counts, manifoldness, orientation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from face_clips import synthetic_face

from dyntet.face.topology import (CHIN, FOREHEAD, LEFT_CHEEK, NUM_SURFACE_TRIANGLES, NUM_TRIANGLES, RIGHT_CHEEK,
                                  boundary_loops, face_mesh_layout, face_mesh_triangles, orient_consistently,
                                  surface_triangles_unoriented, vertex_normals)


def directed_edges(tris: np.ndarray) -> Counter:
    return Counter((int(t[i]), int(t[(i + 1) % 3])) for t in tris for i in range(3))


def test_surface_is_a_disc_with_three_holes():
    tris = surface_triangles_unoriented()
    assert tris.shape == (NUM_SURFACE_TRIANGLES, 3)
    vertices = np.unique(tris)
    edges = {tuple(sorted((int(t[i]), int(t[(i + 1) % 3])))) for t in tris for i in range(3)}
    assert len(vertices) == 468
    assert len(vertices) - len(edges) + len(tris) == -2          # Euler characteristic: sphere minus 4 discs
    loops = boundary_loops(orient_consistently(tris))
    assert [len(loop) for loop in loops] == [36, 20, 16, 16]     # face oval, mouth, two eyes
    assert {FOREHEAD, CHIN, LEFT_CHEEK, RIGHT_CHEEK} <= set(loops[0])


def test_k4_outer_triangles_are_not_faces():
    # Vertices 102 and 331 have exactly three neighbours; the 3-cycle around each is not a face.
    tris = {tuple(t) for t in surface_triangles_unoriented().tolist()}
    assert (49, 64, 129) not in tris and (279, 294, 358) not in tris
    assert (49, 64, 102) in tris and (64, 102, 129) in tris


def test_filled_mesh_is_a_consistently_oriented_disc():
    tris = face_mesh_triangles()
    assert tris.shape == (NUM_TRIANGLES, 3) and tris.dtype == np.int32
    assert tris.min() >= 0 and tris.max() < 468
    counts = directed_edges(tris)
    assert max(counts.values()) == 1                              # no directed edge twice: consistent
    assert [len(loop) for loop in boundary_loops(tris)] == [36]   # only the face oval stays open
    assert np.array_equal(face_mesh_triangles(fill_holes=False), tris[:NUM_SURFACE_TRIANGLES])


def test_layout_is_a_frontal_view_and_triangles_are_counter_clockwise():
    layout = face_mesh_layout()
    assert layout[FOREHEAD, 1] > 0.99 and layout[CHIN, 1] < -0.99
    assert layout[LEFT_CHEEK, 0] > 0.9 and layout[RIGHT_CHEEK, 0] < -0.9   # +X is the subject's left
    tris = face_mesh_triangles()
    a, b, c = (layout[tris[:, i]] for i in range(3))
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    assert (area > 0).all()


@pytest.fixture
def face():
    return synthetic_face()


def test_normals_point_out_of_the_face(face):
    tris = face_mesh_triangles()
    normals = vertex_normals(face, tris)
    assert normals.shape == (478, 3) and normals.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    assert (normals[:468, 2] > 0).mean() > 0.95
    # Iris points are in no triangle: they borrow the nearest surface point's normal.
    assert normals[468, 2] > 0.5


def test_triangles_face_outwards_on_a_tracked_face(astronaut):
    # Real geometry, independent of the layout used to orient: MediaPipe's points on a photo.
    from dyntet.face.face_model import image_to_shape
    from dyntet.face.tracking import FaceMeshTracker

    with FaceMeshTracker() as tracker:
        points = image_to_shape(tracker.process(astronaut)[0])
    tris = face_mesh_triangles()
    a, b, c = (points[tris[:, i]] for i in range(3))
    normals = np.cross(b - a, c - a)
    assert (normals[:NUM_SURFACE_TRIANGLES, 2] > 0).mean() > 0.9      # towards the camera (+Z)
    assert normals[:, 2].sum() > 0.5 * np.linalg.norm(normals, axis=1).sum()


def test_vertex_normals_tiny_case():
    points = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 1]], np.float64)
    normals = vertex_normals(points, np.array([[0, 1, 2]]))
    np.testing.assert_allclose(normals[:3], [[0, 0, 1]] * 3)
    np.testing.assert_allclose(normals[3], [0, 0, 1])


def test_orient_consistently_rejects_non_manifold():
    with pytest.raises(ValueError, match="manifold"):
        orient_consistently(np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4]]))
