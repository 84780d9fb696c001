"""Weighted similarity alignment and generalised Procrustes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dyntet.face.align import (apply_similarity, generalized_procrustes, invert_similarity, similarity_align,
                               stable_point_weights)
from dyntet.face.camera_fit import rodrigues


def random_similarity(rng):
    return rodrigues(rng.normal(size=3)), float(rng.uniform(0.3, 3.0)), rng.normal(size=3)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_similarity_align_recovers_a_known_transform(seed):
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(20, 3))
    rot, s, t = random_similarity(rng)
    target = s * source @ rot.T + t
    r_fit, s_fit, t_fit = similarity_align(source, target)
    np.testing.assert_allclose(r_fit, rot, atol=1e-8)
    np.testing.assert_allclose(s_fit, s, rtol=1e-8)
    np.testing.assert_allclose(t_fit, t, atol=1e-8)
    assert np.isclose(np.linalg.det(r_fit), 1.0)


def test_weights_ignore_points_that_moved():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(30, 3))
    rot, s, t = random_similarity(rng)
    target = s * source @ rot.T + t
    target[:5] += 10.0                      # five points moved (an "expression")
    weights = np.ones(30)
    weights[:5] = 0.0
    r_fit, s_fit, _ = similarity_align(source, target, weights)
    np.testing.assert_allclose(r_fit, rot, atol=1e-8)
    unweighted = similarity_align(source, target)[0]
    assert np.abs(unweighted - rot).max() > 1e-3


def test_rigid_alignment_keeps_unit_scale_and_batches():
    rng = np.random.default_rng(2)
    source = rng.normal(size=(4, 12, 3))
    rots = rodrigues(rng.normal(size=(4, 3)))
    target = np.einsum("bij,bpj->bpi", rots, source) * 2.0
    r_fit, s_fit, _ = similarity_align(source, target, scale=False)
    assert r_fit.shape == (4, 3, 3) and np.allclose(s_fit, 1.0)
    np.testing.assert_allclose(r_fit, rots, atol=1e-8)


def test_invert_similarity_round_trip():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(7, 3))
    rot, s, t = random_similarity(rng)
    moved = apply_similarity(points, rot, np.array(s), t)
    back = apply_similarity(moved, *invert_similarity(rot, np.array(s), t))
    np.testing.assert_allclose(back, points, atol=1e-10)


def test_generalized_procrustes_aligns_transformed_copies():
    rng = np.random.default_rng(4)
    base = rng.normal(size=(25, 3))
    shapes = []
    for _ in range(6):
        rot, s, t = random_similarity(rng)
        shapes.append(s * base @ rot.T + t + rng.normal(scale=1e-3, size=base.shape))
    aligned, reference = generalized_procrustes(np.array(shapes))
    assert np.abs(aligned - reference).max() < 0.02 * np.abs(reference).max()
    # The reference keeps the first shape's orientation.
    r0, _, _ = similarity_align(reference, shapes[0])
    assert np.degrees(np.arccos(np.clip((np.trace(r0) - 1) / 2, -1, 1))) < 1.0


def test_stable_point_weights_choose_the_still_points():
    rng = np.random.default_rng(5)
    shapes = np.repeat(rng.normal(size=(1, 10, 3)), 8, axis=0)
    shapes[:, 6:] += rng.normal(scale=0.5, size=(8, 4, 3))    # four points move
    weights = stable_point_weights(shapes, fraction=0.5)
    assert weights.tolist() == [1.0] * 5 + [0.0] * 5 or weights[6:].sum() == 0
    assert weights.sum() == 5
