"""Pose normalisation and the landmark face model (mean + PCA expression basis)."""

from __future__ import annotations

import numpy as np
import pytest
from face_clips import synthetic_face

from dyntet.face.camera_fit import rodrigues
from dyntet.face.face_model import (INTERPUPILLARY_M, FaceModelConfig, LandmarkFaceModelBuilder,
                                    choose_num_expression, image_to_shape, normalize_shapes)
from dyntet.face.topology import CHIN, FOREHEAD, LEFT_CHEEK, NUM_TRIANGLES, RIGHT_CHEEK


def expressive_clip(frames=80, k_true=3, seed=0):
    """Face shapes = mean + Σ α_k D_k (mouth-region modes), each under its own similarity transform."""
    rng = np.random.default_rng(seed)
    face = synthetic_face()
    low = face[:, 1] < np.percentile(face[:, 1], 35)              # "mouth and jaw" points
    modes = np.zeros((k_true, 478, 3))
    for k in range(k_true):
        modes[k, low] = rng.normal(scale=0.004, size=(low.sum(), 3))
    alpha = rng.normal(size=(frames, k_true))
    local = face + np.einsum("tk,kpd->tpd", alpha, modes)
    rot = rodrigues(rng.normal(scale=0.2, size=(frames, 3)))
    scale = rng.uniform(800, 1500, size=frames)                    # pixels per metre
    shift = rng.normal(scale=50, size=(frames, 3))
    shapes = scale[:, None, None] * np.einsum("tij,tpj->tpi", rot, local) + shift[:, None]
    return shapes, local, alpha, modes


def test_normalize_shapes_removes_pose_and_sets_head_axes():
    shapes, local, _, _ = expressive_clip()
    norm = normalize_shapes(shapes)
    head = norm.head
    # Rigid (stable) points coincide across frames after normalisation.
    stable = norm.weights > 0
    assert np.abs(head[:, stable] - head[:, stable].mean(0)).max() < 1e-4
    mean = head.mean(0)
    assert mean[LEFT_CHEEK, 0] > mean[RIGHT_CHEEK, 0]              # +X: subject's left
    assert mean[FOREHEAD, 1] > mean[CHIN, 1]                       # +Y: up
    assert mean[1, 2] > mean[LEFT_CHEEK, 2]                        # +Z: out of the face (nose in front)
    assert np.linalg.norm(mean[473] - mean[468]) == pytest.approx(INTERPUPILLARY_M, rel=1e-6)
    np.testing.assert_allclose(0.5 * (mean[LEFT_CHEEK] + mean[RIGHT_CHEEK]), 0.0, atol=1e-9)
    # input ≈ s R head + t reproduces the inputs.
    rot, s, t = norm.input_from_head
    back = s[:, None, None] * np.einsum("tij,tpj->tpi", rot, head) + t[:, None]
    np.testing.assert_allclose(back, shapes, atol=1e-6 * np.abs(shapes).max())


def test_normalize_shapes_validates_input():
    with pytest.raises(ValueError, match="478"):
        normalize_shapes(np.zeros((3, 10, 3)))
    bad = expressive_clip(frames=4)[0]
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        normalize_shapes(bad)


def test_pca_recovers_the_expression_subspace():
    shapes, _, alpha, modes = expressive_clip(frames=120, k_true=3)
    norm = normalize_shapes(shapes)
    fit = LandmarkFaceModelBuilder(FaceModelConfig(num_expression=3)).build(norm.head, np.ones(120, bool))
    assert fit.face_model.expression_basis.shape == (3, 478, 3)
    assert fit.explained_variance > 0.999
    # α has unit variance over the training frames, and the model reproduces every frame.
    np.testing.assert_allclose(fit.expression.std(0, ddof=1), 1.0, rtol=1e-3)
    recon = fit.landmark_points(fit.expression)
    assert np.abs(recon - norm.head).max() < 1e-4
    # The learnt α are a linear re-mixing of the true ones.
    coef, res, *_ = np.linalg.lstsq(np.c_[alpha, np.ones(120)], fit.expression, rcond=None)
    assert res.max() < 1e-3 * 120
    assert fit.face_model.triangles.shape == (NUM_TRIANGLES, 3)


def test_automatic_k_is_clamped_to_range_and_rank():
    config = FaceModelConfig()
    ratio = np.full(400, 1 / 400)
    assert choose_num_expression(ratio, config, max_rank=400) == 64          # needs many: capped
    steep = np.r_[0.9, 0.09, np.full(398, 0.01 / 398)]
    assert choose_num_expression(steep, config, max_rank=400) == 32          # needs few: raised to 32
    assert choose_num_expression(steep, config, max_rank=10) == 10           # short clip: data's rank
    assert choose_num_expression(steep, FaceModelConfig(num_expression=5), max_rank=400) == 5


def test_builder_on_a_short_clip_limits_k_and_keeps_test_frames_out():
    shapes, _, _, _ = expressive_clip(frames=12, k_true=3)
    norm = normalize_shapes(shapes)
    train = np.arange(12) < 11
    fit = LandmarkFaceModelBuilder().build(norm.head, train)
    assert fit.expression.shape[0] == 12 and 1 <= fit.expression.shape[1] <= 10
    np.testing.assert_allclose(fit.face_model.mean_shape, norm.head[train].mean(0), atol=1e-6)


def test_image_to_shape_flips_to_right_handed_axes():
    out = image_to_shape(np.array([[[10.0, 20.0, -5.0]]]))
    np.testing.assert_allclose(out, [[[10.0, -20.0, 5.0]]])


def test_face_model_config_validation():
    with pytest.raises(ValueError):
        FaceModelConfig(min_expression=70, max_expression=64)
    with pytest.raises(ValueError):
        FaceModelConfig(explained_variance=0.0)
