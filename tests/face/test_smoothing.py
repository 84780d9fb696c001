"""Zero-lag pose smoothing and the jitter measure."""

from __future__ import annotations

import numpy as np
import pytest

from dyntet.face.camera_fit import rodrigues, rotation_log
from dyntet.face.smoothing import SmoothingConfig, mean_rotation, pose_jitter, runs, smooth_poses


def track(frames=200, fps=25.0, noise_deg=0.5, noise_mm=2.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    omega = np.stack([np.radians(10) * np.sin(2 * np.pi * 0.4 * t), np.radians(15) * np.sin(2 * np.pi * 0.25 * t),
                      np.zeros_like(t)], 1)
    trans = np.stack([0.02 * np.sin(2 * np.pi * 0.3 * t), np.zeros_like(t), -0.6 + 0.0 * t], 1)
    noisy_omega = omega + np.radians(noise_deg) * rng.normal(size=omega.shape)
    noisy_trans = trans + noise_mm / 1000 * rng.normal(size=trans.shape)
    return rodrigues(omega), trans, rodrigues(noisy_omega), noisy_trans, np.arange(frames)


def angle_deg(a, b):
    return np.degrees(np.linalg.norm(rotation_log(np.einsum("nij,nkj->nik", a, b)), axis=-1))


def test_smoothing_removes_noise_but_keeps_the_motion():
    rot, trans, noisy_rot, noisy_trans, index = track()
    smooth_rot, smooth_trans = smooth_poses(noisy_rot, noisy_trans, index, 25.0)
    # White noise through a 4 Hz low-pass at 25 fps keeps about √(4 / 12.5) ≈ 0.57 of its amplitude.
    assert np.median(angle_deg(smooth_rot, rot)) < 0.7 * np.median(angle_deg(noisy_rot, rot))
    assert (np.median(np.linalg.norm(smooth_trans - trans, axis=1))
            < 0.7 * np.median(np.linalg.norm(noisy_trans - trans, axis=1)))


def test_smoothing_has_no_lag():
    rot, trans, _, _, index = track(noise_deg=0.0, noise_mm=0.0)
    smooth_rot, _ = smooth_poses(rot, trans, index, 25.0)
    # A causal filter would trail the motion by several frames; zero phase keeps it aligned.
    yaw, smooth_yaw = rotation_log(rot)[:, 1], rotation_log(smooth_rot)[:, 1]
    lags = range(-5, 6)
    errors = [np.abs(np.roll(smooth_yaw, lag)[10:-10] - yaw[10:-10]).mean() for lag in lags]
    assert list(lags)[int(np.argmin(errors))] == 0
    assert np.abs(smooth_yaw - yaw)[10:-10].max() < np.radians(0.2)


def test_a_glitch_frame_does_not_smear():
    rot, trans, _, _, index = track(noise_deg=0.0, noise_mm=0.0)
    glitched = rot.copy()
    glitched[100] = rodrigues(np.array([0.0, np.radians(25), 0.0])) @ rot[100]
    smooth_rot, _ = smooth_poses(glitched, trans, index, 25.0)
    assert angle_deg(smooth_rot, rot)[95:106].max() < 0.5


def test_runs_split_at_gaps():
    index = np.array([0, 1, 2, 5, 6, 20, 21, 22])
    assert [(s.start, s.stop) for s in runs(index, max_gap=3)] == [(0, 5), (5, 8)]
    assert runs(np.array([], int), 3) == []


def test_disabled_smoothing_is_identity():
    _, _, noisy_rot, noisy_trans, index = track(frames=30)
    r, t = smooth_poses(noisy_rot, noisy_trans, index, 25.0,
                        SmoothingConfig(cutoff_hz=0.0, outlier_deg=180.0, outlier_mm=1e6))
    np.testing.assert_allclose(r, noisy_rot, atol=1e-9)
    np.testing.assert_allclose(t, noisy_trans)


def test_jitter_is_zero_for_steady_motion_and_grows_with_noise():
    t = np.arange(50)
    steady = rodrigues(np.stack([np.zeros(50), 0.01 * t, np.zeros(50)], 1))      # constant angular velocity
    trans = np.stack([0.001 * t, np.zeros(50), np.full(50, -0.6)], 1)
    deg, mm = pose_jitter(steady, trans, t)
    assert deg.shape == (48,) and deg.max() < 1e-6 and mm.max() < 1e-9
    _, _, noisy_rot, noisy_trans, index = track(frames=50, noise_deg=0.5)
    deg, mm = pose_jitter(noisy_rot, noisy_trans, index)
    assert 0.4 < np.median(deg) < 2.5 and np.median(mm) > 1.0


def test_jitter_skips_frames_next_to_gaps():
    rot, trans, _, _, _ = track(frames=6, noise_deg=0.0, noise_mm=0.0)
    deg, _ = pose_jitter(rot, trans, np.array([0, 1, 2, 10, 11, 12]))
    assert deg.shape == (2,)


def test_mean_rotation_of_symmetric_spread():
    spread = rodrigues(np.array([[0, 0.2, 0], [0, -0.2, 0]]))
    np.testing.assert_allclose(mean_rotation(spread), np.eye(3), atol=1e-12)


def test_smooth_poses_validates_shapes():
    with pytest.raises(ValueError, match="disagree"):
        smooth_poses(np.zeros((3, 3, 3)), np.zeros((2, 3)), np.arange(3), 25.0)
