"""Cross-identity expression transfer: correspondence, the least-squares map, re-centring."""

from __future__ import annotations

import numpy as np
import pytest

from dyntet.formats.dataset import Dataset, FaceModel
from dyntet.generate.retarget import RetargetError, closest_point_on_triangles, correspond, expression_transfer

TRIANGLE = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize("point, expected", [
    ([0.2, 0.3, 5.0], [0.2, 0.3, 0.0]),       # above the interior: straight down
    ([-1.0, -2.0, 0.5], [0.0, 0.0, 0.0]),     # beyond corner a
    ([3.0, -0.5, 0.0], [1.0, 0.0, 0.0]),      # beyond corner b
    ([0.5, -1.0, 0.0], [0.5, 0.0, 0.0]),      # beyond edge ab
    ([1.0, 1.0, 0.0], [0.5, 0.5, 0.0]),       # beyond edge bc
    ([-0.5, 0.4, 1.0], [0.0, 0.4, 0.0]),      # beyond edge ca
])
def test_closest_point_on_a_triangle(point, expected):
    a, b, c = (np.array(v)[None] for v in TRIANGLE)
    closest, bary = closest_point_on_triangles(np.array(point)[None], a, b, c)
    np.testing.assert_allclose(closest[0], expected, atol=1e-12)
    np.testing.assert_allclose(bary[0] @ TRIANGLE, expected, atol=1e-12)
    assert bary.min() >= 0 and abs(bary.sum() - 1) < 1e-12


def test_same_topology_maps_point_for_point_and_self_transfer_is_identity(subject):
    face = Dataset.open(subject).face_model
    mean = np.linspace(-0.2, 0.3, face.num_expression)
    transfer = expression_transfer(face, face, mean, mean)
    assert transfer.correspondence.kind == "topology"
    np.testing.assert_allclose(transfer.matrix, np.eye(face.num_expression), atol=1e-4)
    alpha = np.random.default_rng(0).normal(size=(5, face.num_expression))
    np.testing.assert_allclose(transfer(alpha), alpha, atol=1e-4)


def test_other_person_maps_controls_onto_the_same_controls(subject, other_subject):
    """Two synthetic people share the rig's meaning (jaw_open, smiles, …) but not their face-model points:
    the fitted map must send each driver control mostly to the same target control."""
    driver, target = Dataset.open(other_subject), Dataset.open(subject)
    assert driver.face_model.mean_shape.shape != target.face_model.mean_shape.shape
    transfer = expression_transfer(driver.face_model, target.face_model, driver.tracking.expression.mean(0),
                                   target.tracking.expression.mean(0))
    assert transfer.correspondence.kind == "surface"
    assert transfer.correspondence.valid.mean() > 0.7
    assert transfer.relative_residual < 0.5
    dominant = np.abs(transfer.matrix).argmax(0)
    np.testing.assert_array_equal(dominant, np.arange(transfer.matrix.shape[1]))
    # Re-centring (α′ + (ᾱ − ᾱ′)): the driver's mean face becomes the target's mean face.
    np.testing.assert_allclose(transfer(transfer.driver_mean), transfer.target_mean, atol=1e-6)


def test_faces_that_do_not_overlap_are_refused(subject):
    face = Dataset.open(subject).face_model
    flat = FaceModel(face.mean_shape * [1.0, 1.0, 0.0], face.expression_basis, face.triangles)
    with pytest.raises(RetargetError, match="degenerate"):
        correspond(flat, face)
    # A driver whose surface is three triangles covers almost none of the target's face.
    patch = FaceModel(face.mean_shape[:-1], face.expression_basis[:, :-1], face.triangles[:3])
    with pytest.raises(RetargetError, match="barely overlap"):
        correspond(patch, face)
