"""Head-pose and focal-length fitting on exactly known cameras (no MediaPipe)."""

from __future__ import annotations

import numpy as np
import pytest
from face_clips import synthetic_face

from dyntet.face.align import similarity_align
from dyntet.face.camera_fit import (CameraFitConfig, estimate_focal, fit_camera, lift_landmarks, project,
                                    rodrigues, rotation_log)
from dyntet.face.face_model import image_to_shape


def test_rodrigues_and_log_round_trip():
    rng = np.random.default_rng(0)
    omega = rng.normal(size=(50, 3))
    omega *= (rng.uniform(0.0, 3.0, size=(50, 1)) / np.linalg.norm(omega, axis=1, keepdims=True))
    rot = rodrigues(omega)
    np.testing.assert_allclose(np.einsum("nij,nkj->nik", rot, rot), np.broadcast_to(np.eye(3), rot.shape),
                               atol=1e-12)
    np.testing.assert_allclose(rotation_log(rot), omega, atol=1e-9)
    np.testing.assert_allclose(rodrigues(np.zeros(3)), np.eye(3))


def test_project_matches_the_pinhole_convention():
    # A point 1 m in front of the camera, 0.1 m to the right and 0.05 m up.
    pose_r, pose_t = np.eye(3)[None], np.array([[0.0, 0.0, -1.0]])
    uv = project(np.array([[[0.1, 0.05, 0.0]]]), pose_r, pose_t, 1000.0, (320.0, 240.0))
    np.testing.assert_allclose(uv[0, 0], [420.0, 190.0])   # right → larger x, up → smaller y


def scene(frames=60, focal=600.0, size=(512, 512), seed=0, yaw_deg=25.0):
    """A rigid face turning in front of a pinhole camera; returns points, pixels, truth."""
    rng = np.random.default_rng(seed)
    face = synthetic_face()
    t = np.linspace(0, 2 * np.pi, frames)
    omega = np.stack([np.radians(8) * np.sin(1.3 * t), np.radians(yaw_deg) * np.sin(t),
                      np.radians(4) * np.cos(0.7 * t)], 1)
    rot = rodrigues(omega)
    trans = np.stack([0.02 * np.sin(t), 0.01 * np.cos(t), -0.6 + 0.03 * np.sin(0.5 * t)], 1)
    points = np.broadcast_to(face, (frames,) + face.shape).copy()
    principal = (size[0] / 2, size[1] / 2)
    pixels = project(points, rot, trans, focal, principal)
    return points, pixels, rot, trans, rng


def mediapipe_like(points, rot, trans, focal, principal):
    """Pixels as MediaPipe reports them: perspective x, y and depth relative to the head centre in the
    pixel scale at the head's distance."""
    uv = project(points, rot, trans, focal, principal)
    cam = np.einsum("tij,tpj->tpi", rot, points) + trans[:, None]
    depth = -cam[..., 2]
    centre_depth = -trans[:, 2:3]
    z = (depth - centre_depth) * focal / centre_depth
    return np.concatenate([uv, z[..., None]], -1)


def weak_start(points, rot, trans, focal):
    """The weak-perspective start the pipeline uses: each frame's MediaPipe-like shape, Procrustes-aligned."""
    observed = image_to_shape(mediapipe_like(points, rot, trans, focal, (256.0, 256.0)))
    return similarity_align(points, observed, scale=True)


def test_fit_camera_recovers_poses_with_known_focal():
    points, pixels, rot, trans, rng = scene()
    noisy = pixels + rng.normal(scale=0.3, size=pixels.shape)
    fit = fit_camera(points, noisy, (512, 512), weak_start(points, rot, trans, 600.0), CameraFitConfig(focal=600.0))
    angle = np.degrees(np.linalg.norm(rotation_log(np.einsum("tij,tkj->tik", fit.rotation, rot)), axis=-1))
    assert np.median(angle) < 0.3
    assert np.median(np.linalg.norm(fit.translation - trans, axis=1)) < 0.003
    assert np.median(fit.error_px) < 0.6
    assert fit.pose().shape == (60, 4, 4)


def test_fit_camera_estimates_focal_from_perspective():
    points, pixels, rot, trans, rng = scene(focal=500.0)
    fit = fit_camera(points, pixels + rng.normal(scale=0.2, size=pixels.shape), (512, 512),
                     weak_start(points, rot, trans, 500.0), CameraFitConfig(focal_prior_rms_px=0.0))
    assert fit.focal == pytest.approx(500.0, rel=0.05)


def test_huber_loss_resists_outlier_landmarks():
    points, pixels, rot, trans, rng = scene(frames=20)
    bad = pixels.copy()
    bad[:, :20] += 40.0                                   # 20 landmarks way off in every frame
    fit = fit_camera(points, bad, (512, 512), weak_start(points, rot, trans, 600.0), CameraFitConfig(focal=600.0))
    angle = np.degrees(np.linalg.norm(rotation_log(np.einsum("tij,tkj->tik", fit.rotation, rot)), axis=-1))
    assert np.median(angle) < 1.0


def test_lift_landmarks_undoes_perspective():
    points, _, rot, trans, _ = scene(frames=4)
    pix = mediapipe_like(points, rot, trans, 500.0, (256.0, 256.0))
    lifted = lift_landmarks(pix, 500.0, (256.0, 256.0))
    # The lifted shape is a similarity transform of the true rigid shape in every frame.
    for t in range(4):
        r, s, tt = similarity_align(points[t], image_to_shape(lifted[t]))
        residual = s * points[t] @ r.T + tt - image_to_shape(lifted[t])
        assert np.abs(residual).max() < 1e-6 * s * 10 + 1e-6
    np.testing.assert_allclose(lift_landmarks(pix, 1e12, (256.0, 256.0)), pix, atol=1e-6)


@pytest.mark.parametrize("focal", [300.0, 900.0])
def test_estimate_focal_from_rigidity(focal):
    points, _, rot, trans, rng = scene(frames=80, focal=focal, yaw_deg=30.0)
    pix = mediapipe_like(points, rot, trans, focal, (256.0, 256.0))
    pix[..., :2] += rng.normal(scale=0.2, size=pix[..., :2].shape)
    estimate = estimate_focal(pix, (512, 512), np.ones(478))
    assert estimate.constrained
    assert estimate.focal == pytest.approx(focal, rel=0.1)


def test_estimate_focal_falls_back_to_the_prior_without_rotation():
    # A head that never moves says nothing about the focal length.
    points, _, rot, trans, _ = scene(frames=30)
    still = np.broadcast_to(np.eye(3), rot.shape).copy()
    pix = mediapipe_like(points, still, np.broadcast_to(trans[:1], trans.shape).copy(), 600.0, (256.0, 256.0))
    estimate = estimate_focal(pix, (512, 512), np.ones(478), CameraFitConfig(focal_prior=1.5))
    assert not estimate.constrained
    assert estimate.focal == pytest.approx(1.5 * 512)


def test_fit_camera_validates_its_inputs():
    with pytest.raises(ValueError, match="disagree"):
        fit_camera(np.zeros((2, 5, 3)), np.zeros((2, 4, 2)), (64, 64), (np.eye(3)[None], np.ones(1), np.zeros((1, 3))))
    with pytest.raises(ValueError, match="positive"):
        CameraFitConfig(focal=-1.0)
