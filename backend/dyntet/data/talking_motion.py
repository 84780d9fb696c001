"""Smooth random curves that look like someone talking: rig weights α(t) and small head motion.

Everything is a deterministic function of a ``numpy.random.Generator``, so one seed gives one clip.
Curves are sums of a few sinusoids (band-limited, no frame-to-frame jitter) and raised-cosine blinks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dyntet.data.face_rig import RIG_CONTROLS


def smooth_noise(rng: np.random.Generator, times: np.ndarray, low_hz: float, high_hz: float,
                 components: int = 5) -> np.ndarray:
    """Zero-mean band-limited noise float64 [T] at ``times`` (seconds), standard deviation ≈ 1."""
    freqs = rng.uniform(low_hz, high_hz, components)
    phases = rng.uniform(0.0, 2.0 * np.pi, components)
    amps = rng.uniform(0.5, 1.0, components)
    amps = amps * np.sqrt(2.0 / np.sum(amps ** 2))
    return np.sum(amps[:, None] * np.sin(2.0 * np.pi * freqs[:, None] * times[None] + phases[:, None]), 0)


def blink_curve(rng: np.random.Generator, times: np.ndarray, duration: float = 0.26,
                interval: tuple[float, float] = (1.6, 4.5)) -> np.ndarray:
    """Eyelid closure float64 [T] in [0, 1]: raised-cosine blinks at random intervals."""
    curve = np.zeros_like(times)
    t = rng.uniform(0.3, interval[0])
    while t < times[-1] + duration:
        depth = rng.uniform(0.85, 1.0)
        phase = np.clip((times - t) / (duration / 2), -1.0, 1.0)
        curve = np.maximum(curve, depth * 0.5 * (1.0 + np.cos(np.pi * phase)))
        t += rng.uniform(*interval)
    return curve


def expression_curves(rng: np.random.Generator, num_frames: int, fps: float) -> np.ndarray:
    """Rig weights α float64 [T, K] (K = ``len(RIG_CONTROLS)``) for a talking clip.

    The jaw follows syllables (≈2.5–5 Hz) inside a slowly varying speech envelope with pauses; lip shapes
    (pucker, stretch) come and go with speech; smiles and brows drift slowly; both eyes blink together.
    """
    times = np.arange(num_frames) / fps
    speech = np.clip(0.65 + 0.55 * smooth_noise(rng, times, 0.05, 0.3), 0.0, 1.0)
    syllable_hz = np.clip(3.6 + 0.5 * smooth_noise(rng, times, 0.1, 0.5), 2.5, 5.0)
    syllable = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.cumsum(syllable_hz) / fps + rng.uniform(0, 2 * np.pi))
    loudness = np.clip(0.8 + 0.2 * smooth_noise(rng, times, 0.5, 1.5), 0.5, 1.1)
    jaw = speech * (0.08 + 0.62 * syllable ** 1.3 * loudness)
    smile = np.clip(0.25 + 0.2 * smooth_noise(rng, times, 0.03, 0.2), 0.0, 0.8)
    asym = 0.06 * smooth_noise(rng, times, 0.1, 0.4)
    pucker = speech * np.clip(0.15 + 0.3 * smooth_noise(rng, times, 0.4, 1.5), 0.0, 0.8)
    stretch = speech * np.clip(0.1 + 0.25 * smooth_noise(rng, times, 0.4, 1.5), 0.0, 0.7)
    brows = np.clip(0.15 + 0.25 * smooth_noise(rng, times, 0.1, 0.6) + 0.2 * (speech - 0.5), -0.3, 0.8)
    blink = blink_curve(rng, times)
    columns = {
        "jaw_open": jaw, "smile_left": np.clip(smile + asym, 0.0, 1.0), "smile_right": np.clip(smile - asym, 0.0, 1.0),
        "pucker": pucker, "blink_left": blink, "blink_right": blink, "brow_raise": brows, "mouth_stretch": stretch,
    }
    return np.stack([columns[name] for name in RIG_CONTROLS], 1)


@dataclass(frozen=True)
class HeadMotion:
    """Amplitudes of the head's motion about its rest pose."""

    max_rotation_deg: tuple[float, float, float] = (6.0, 4.0, 2.5)
    """Largest yaw (about +Y), pitch (about +X) and roll (about +Z) in degrees."""
    max_translation: tuple[float, float, float] = (0.008, 0.006, 0.010)
    """Largest translation along X, Y, Z in metres."""
    pivot: tuple[float, float, float] = (0.0, -0.075, -0.02)
    """Head-space point the head turns about (top of the neck)."""


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """float64 [3, 3] rotation ``R_y(yaw) @ R_x(pitch) @ R_z(roll)`` (radians, right-handed)."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    r_y = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    r_x = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    r_z = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return r_y @ r_x @ r_z


def head_motion(rng: np.random.Generator, num_frames: int, fps: float, motion: HeadMotion) -> np.ndarray:
    """Head-to-rest rigid transforms float64 [T, 4, 4]: slow turns about the neck plus small shifts."""
    times = np.arange(num_frames) / fps
    pivot = np.array(motion.pivot)
    out = np.tile(np.eye(4), (num_frames, 1, 1))
    angles = [np.radians(a) * np.clip(smooth_noise(rng, times, 0.05, 0.45, 4) / 2.0, -1.0, 1.0)
              for a in motion.max_rotation_deg]
    shifts = [m * np.clip(smooth_noise(rng, times, 0.05, 0.35, 4) / 2.0, -1.0, 1.0) for m in motion.max_translation]
    for i in range(num_frames):
        rot = rotation_matrix(angles[0][i], angles[1][i], angles[2][i])
        out[i, :3, :3] = rot
        out[i, :3, 3] = pivot - rot @ pivot + np.array([s[i] for s in shifts])
    return out
