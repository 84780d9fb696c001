"""The synthetic head: mesh health, feature placement, blend shapes and the exact face model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dyntet.data.face_rig import JAW_ANGLE, RIG_CONTROLS, blend_shapes, build_face_model
from dyntet.data.head_mesh import (REFERENCE_LANDMARKS_PX, FaceLayout, HeadIdentity, build_head, build_torso,
                                   focus_band, focus_front, icosphere)
from dyntet.geometry.mesh import edge_manifold_report, enclosed_volume, face_normals


def _head(seed: int | None = None):
    identity = HeadIdentity() if seed is None else HeadIdentity.sample(np.random.default_rng(seed))
    layout = FaceLayout.from_identity(identity)
    return identity, layout, build_head(identity, layout)


def _outward_fraction(verts: np.ndarray, faces: np.ndarray) -> float:
    """Fraction of faces whose normal points away from the origin (1 for a star-shaped, outward mesh)."""
    normals = face_normals(torch.from_numpy(verts), torch.from_numpy(faces)).numpy()
    centroids = verts[faces].mean(1)
    return float(((normals * centroids).sum(-1) > 0).mean())


def test_icosphere_counts_nesting_and_orientation() -> None:
    for level in range(4):
        verts, faces = icosphere(level)
        assert verts.shape == (10 * 4 ** level + 2, 3) and faces.shape == (20 * 4 ** level, 3)
        np.testing.assert_allclose(np.linalg.norm(verts, axis=1), 1.0)
        report = edge_manifold_report(torch.from_numpy(faces))
        assert report.edge_manifold and report.consistently_oriented and report.euler_characteristic == 2
        assert _outward_fraction(verts, faces) == 1.0
    coarse, _ = icosphere(2)
    fine, _ = icosphere(3)
    np.testing.assert_array_equal(fine[:len(coarse)], coarse)
    with pytest.raises(ValueError, match="level"):
        icosphere(9)


def test_direction_warps_keep_the_sphere_and_its_orientation() -> None:
    verts, faces = icosphere(3)
    for warped in (focus_front(verts, 0.5), focus_band(verts, -0.4, 0.6, 0.07)):
        np.testing.assert_allclose(np.linalg.norm(warped, axis=1), 1.0, atol=1e-12)
        assert _outward_fraction(warped, faces) == 1.0
    front = focus_front(verts, 0.5)
    assert (front[:, 2] > 0.5).sum() > 1.5 * (verts[:, 2] > 0.5).sum()  # denser on the face
    with pytest.raises(ValueError):
        focus_front(verts, 1.0)


@pytest.mark.parametrize("seed", [None, 0, 1, 2])
def test_head_is_closed_outward_and_star_shaped(seed: int | None) -> None:
    identity, _, head = _head(seed)
    assert head.faces.shape == (20480, 3)
    report = edge_manifold_report(torch.from_numpy(head.faces))
    assert report.edge_manifold and report.consistently_oriented and report.euler_characteristic == 2
    volume = float(enclosed_volume(torch.from_numpy(head.vertices), torch.from_numpy(head.faces)))
    assert 0.0025 < volume < 0.0055  # m³: a head, not a pea or a barrel
    # Every face looks away from the head's centre: the surface cannot intersect itself.
    assert _outward_fraction(head.vertices, head.faces) == 1.0
    extent = head.vertices.max(0) - head.vertices.min(0)
    assert 0.14 < extent[0] < 0.22 and 0.2 < extent[1] < 0.27 and 0.18 < extent[2] < 0.25


def test_torso_is_closed_and_outward() -> None:
    verts, faces = build_torso(HeadIdentity())
    report = edge_manifold_report(torch.from_numpy(faces))
    assert report.edge_manifold and report.consistently_oriented and report.euler_characteristic == 2
    assert float(enclosed_volume(torch.from_numpy(verts), torch.from_numpy(faces))) > 0


def test_layout_puts_pupils_and_mouth_where_the_identity_says() -> None:
    identity = HeadIdentity(eye_spacing=0.06, eye_height=0.012, mouth_height=-0.07)
    layout = FaceLayout.from_identity(identity)
    np.testing.assert_allclose(layout.point("iris_r"), [-0.03, 0.012], atol=1e-12)
    np.testing.assert_allclose(layout.point("iris_l"), [0.03, 0.012], atol=1e-12)
    mouth = (np.array(REFERENCE_LANDMARKS_PX["lip_upper_inner"]) + REFERENCE_LANDMARKS_PX["lip_lower_inner"]) / 2
    np.testing.assert_allclose(layout.to_head(mouth), [0.0, -0.07], atol=1e-12)
    pixels = np.array([[100.0, 50.0], [300.0, 400.0]])
    np.testing.assert_allclose(layout.to_image(layout.to_head(pixels)), pixels, atol=1e-9)
    assert 1.2e-3 < layout.metres_per_pixel < 1.8e-3


def test_nose_is_the_frontmost_point_and_sits_at_the_textures_nose() -> None:
    _, layout, head = _head()
    tip = head.vertices[np.argmax(head.vertices[:, 2])]
    assert np.linalg.norm(tip[:2] - layout.point("nose_tip")) < 0.006


def test_seeds_give_different_people() -> None:
    a, b = HeadIdentity.sample(np.random.default_rng(0)), HeadIdentity.sample(np.random.default_rng(1))
    assert a != b and a == HeadIdentity.sample(np.random.default_rng(0))
    assert abs(a.head_width - b.head_width) + abs(a.eye_spacing - b.eye_spacing) > 1e-4
    assert np.abs(np.subtract(a.skin_tint, b.skin_tint)).max() > 0.01


def test_blend_shapes_move_the_face_only() -> None:
    identity, layout, head = _head()
    shapes = blend_shapes(head.vertices, identity, layout)
    assert shapes.shape == (len(RIG_CONTROLS), len(head.vertices), 3)
    moved = np.linalg.norm(shapes, axis=-1)
    back = head.vertices[:, 2] < 0.0
    assert moved[:, back].max() == 0.0
    assert (moved.max(1) > 0.004).all()  # every control does something visible (> 4 mm somewhere)
    chin = np.argmin(np.linalg.norm(head.vertices[:, :2] - layout.point("chin"), axis=1)
                     + 10 * (head.vertices[:, 2] < 0))
    jaw = shapes[RIG_CONTROLS.index("jaw_open"), chin]
    assert jaw[1] < -0.5 * JAW_ANGLE * 0.08  # the chin drops by centimetres


def test_blink_closes_the_eye() -> None:
    identity, layout, head = _head()
    shapes = blend_shapes(head.vertices, identity, layout)
    for side, s in (("left", "l"), ("right", "r")):
        top, bottom = layout.point(f"eye_{s}_top"), layout.point(f"eye_{s}_bottom")
        iris = layout.point(f"iris_{s}")
        near = (np.abs(head.vertices[:, 0] - iris[0]) < 0.003) & (head.vertices[:, 2] > 0)
        band = near & (head.vertices[:, 1] <= top[1]) & (head.vertices[:, 1] >= bottom[1])
        assert band.sum() >= 3
        closed = head.vertices[band, 1] + shapes[RIG_CONTROLS.index(f"blink_{side}"), band, 1]
        opening = head.vertices[band, 1].max() - head.vertices[band, 1].min()
        assert closed.max() - closed.min() < 0.2 * opening


@pytest.mark.parametrize("control", RIG_CONTROLS)
def test_head_stays_star_shaped_at_full_expression(control: str) -> None:
    identity, layout, head = _head()
    shapes = blend_shapes(head.vertices, identity, layout)
    verts = head.vertices + shapes[RIG_CONTROLS.index(control)]
    assert _outward_fraction(verts, head.faces) == 1.0


def test_face_model_reproduces_the_rig_exactly() -> None:
    identity, layout, head = _head(3)
    model, index = build_face_model(head.vertices, identity, layout, level=4)
    assert 400 <= model.mean_shape.shape[0] <= 1500
    shapes = blend_shapes(head.vertices, identity, layout)
    rng = np.random.default_rng(0)
    for _ in range(5):
        alpha = rng.uniform(-0.5, 1.0, len(RIG_CONTROLS))
        head_now = head.vertices + np.tensordot(alpha, shapes, axes=([0], [0]))
        np.testing.assert_allclose(model.shape(alpha), head_now[index], atol=2e-7)  # float32 storage
    np.testing.assert_allclose(model.shape(np.zeros(len(RIG_CONTROLS))), head.vertices[index], atol=1e-7)


def test_face_model_covers_the_face_as_one_outward_patch() -> None:
    identity, layout, head = _head()
    model, _ = build_face_model(head.vertices, identity, layout, level=4)
    tris = torch.from_numpy(model.triangles.astype(np.int64))
    report = edge_manifold_report(tris)
    assert report.boundary_edges > 0 and report.non_manifold_edges == 0 and report.consistently_oriented
    assert report.euler_characteristic == 1  # a disc: no holes, one piece
    normals = face_normals(torch.from_numpy(model.mean_shape).double(), tris).numpy()
    assert (normals[:, 2] > 0).mean() > 0.97  # counter-clockwise seen from the front
    points = model.mean_shape
    for name in ("forehead", "chin", "iris_l", "iris_r", "nose_tip", "mouth_l", "mouth_r"):
        assert np.linalg.norm(points[:, :2] - layout.point(name), axis=1).min() < 0.008, name
