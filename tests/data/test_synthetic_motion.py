"""Talking curves and head motion: ranges, smoothness, determinism, rigidity."""

from __future__ import annotations

import numpy as np

from dyntet.data.face_rig import RIG_CONTROLS
from dyntet.data.talking_motion import (HeadMotion, blink_curve, expression_curves, head_motion,
                                        rotation_matrix, smooth_noise)

FPS = 25.0


def test_expression_curves_are_deterministic_bounded_and_smooth() -> None:
    alpha = expression_curves(np.random.default_rng(5), 500, FPS)
    assert alpha.shape == (500, len(RIG_CONTROLS))
    np.testing.assert_array_equal(alpha, expression_curves(np.random.default_rng(5), 500, FPS))
    assert not np.array_equal(alpha, expression_curves(np.random.default_rng(6), 500, FPS))
    assert alpha.min() >= -0.3 - 1e-12 and alpha.max() <= 1.0 + 1e-12
    jaw = alpha[:, RIG_CONTROLS.index("jaw_open")]
    assert jaw.max() > 0.3 and jaw.std() > 0.05  # the mouth really moves
    blinks = [RIG_CONTROLS.index("blink_left"), RIG_CONTROLS.index("blink_right")]
    steps = np.abs(np.diff(np.delete(alpha, blinks, 1), axis=0))
    # Bound on the jaw's speed: 0.62 · 1.1 (loudness) · max d(syl^1.3)/dφ ≈ 0.6 · 2π·5 Hz / 25 fps ≈ 0.51.
    assert steps.max() < 0.55  # no frame-to-frame jump beyond the quickest syllable (blinks aside)


def test_blinks_happen_every_few_seconds_and_fully_close() -> None:
    times = np.arange(int(20 * FPS)) / FPS
    blink = blink_curve(np.random.default_rng(0), times)
    closed = blink > 0.8
    starts = np.flatnonzero(closed[1:] & ~closed[:-1])
    assert 4 <= len(starts) <= 14
    assert blink.min() == 0.0 and blink.max() > 0.85


def test_smooth_noise_is_band_limited() -> None:
    times = np.arange(2000) / FPS
    noise = smooth_noise(np.random.default_rng(0), times, 0.1, 0.5)
    assert 0.5 < noise.std() < 1.6
    spectrum = np.abs(np.fft.rfft(noise))
    freqs = np.fft.rfftfreq(len(noise), 1 / FPS)
    assert spectrum[freqs > 1.0].max() < 0.05 * spectrum.max()


def test_head_motion_is_rigid_small_and_turns_about_the_neck() -> None:
    motion = HeadMotion(max_rotation_deg=(6.0, 4.0, 2.5), max_translation=(0.008, 0.006, 0.01))
    transforms = head_motion(np.random.default_rng(0), 300, FPS, motion)
    rot = transforms[:, :3, :3]
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.tile(np.eye(3), (300, 1, 1)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0)
    angle = np.degrees(np.arccos(np.clip((np.trace(rot, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert angle.max() <= np.linalg.norm(motion.max_rotation_deg) + 1e-9 and angle.max() > 1.0
    pivot = np.append(motion.pivot, 1.0)
    moved = transforms @ pivot
    assert np.all(np.abs(moved[:, :3] - motion.pivot).max(0) <= np.array(motion.max_translation) + 1e-12)


def test_rotation_matrix_axes() -> None:
    np.testing.assert_allclose(rotation_matrix(np.pi / 2, 0, 0) @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # yaw: face to +X
    np.testing.assert_allclose(rotation_matrix(0, np.pi / 2, 0) @ [0, 0, 1], [0, -1, 0], atol=1e-12)  # pitch: nod down
