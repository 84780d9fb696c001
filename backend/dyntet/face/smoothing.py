"""Zero-lag temporal smoothing of head poses, and how shaky a pose track is.

Landmark noise makes per-frame poses shake by a fraction of a degree; a shaky head is one of the
most visible defects of a talking-head avatar. A Butterworth low-pass run forwards and backwards
(``sosfiltfilt``) removes the shake without the lag a causal filter adds. Rotations are filtered as
rotation vectors relative to the clip's mean rotation (fine for the ±60° a talking head turns);
isolated outlier poses are replaced from their neighbours first, so one bad frame cannot smear into
its neighbourhood. Runs of consecutive frames are filtered separately: dropped frames break a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, medfilt, sosfiltfilt

from dyntet.face.camera_fit import rodrigues, rotation_log


@dataclass
class SmoothingConfig:
    """Settings of the pose smoother."""

    cutoff_hz: float = 4.0
    """Low-pass cutoff; speech head motion (nods, turns) lives below ≈ 3 Hz. ≤ 0 disables smoothing."""
    order: int = 2
    """Butterworth order (applied twice: forwards and backwards)."""
    outlier_deg: float = 6.0
    """A pose further than this from its 5-frame median is treated as a tracking glitch."""
    outlier_mm: float = 30.0
    """Same for translation (millimetres)."""
    max_gap: int = 3
    """Frames may be missing inside a run up to this many; a longer gap starts a new run."""

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ValueError(f"order must be ≥ 1, got {self.order}")
        if self.outlier_deg <= 0 or self.outlier_mm <= 0 or self.max_gap < 1:
            raise ValueError("outlier_deg and outlier_mm must be positive, max_gap ≥ 1")


def mean_rotation(rotation: np.ndarray) -> np.ndarray:
    """Chordal L2 mean of rotations [T, 3, 3] → [3, 3]."""
    u, _, vt = np.linalg.svd(rotation.mean(0))
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def runs(frame_index: np.ndarray, max_gap: int) -> list[slice]:
    """Slices of ``frame_index`` (sorted int [N]) whose consecutive gaps are ≤ ``max_gap``."""
    if len(frame_index) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frame_index) > max_gap) + 1
    edges = [0, *breaks.tolist(), len(frame_index)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _replace_outliers(values: np.ndarray, limit: float) -> np.ndarray:
    """Values [N, C] further than ``limit`` from their 5-sample median become the median."""
    if len(values) < 5:
        return values
    median = np.stack([medfilt(values[:, c], 5) for c in range(values.shape[1])], 1)
    median[:2], median[-2:] = values[:2], values[-2:]  # medfilt zero-pads the ends
    bad = np.linalg.norm(values - median, axis=1) > limit
    out = values.copy()
    out[bad] = median[bad]
    return out


def _lowpass(values: np.ndarray, fps: float, config: SmoothingConfig) -> np.ndarray:
    nyquist = fps / 2.0
    if config.cutoff_hz <= 0 or config.cutoff_hz >= nyquist or len(values) < 4:
        return values
    sos = butter(config.order, config.cutoff_hz / nyquist, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), len(values) - 1)
    return sosfiltfilt(sos, values, axis=0, padlen=padlen)


def smooth_poses(rotation: np.ndarray, translation: np.ndarray, frame_index: np.ndarray, fps: float,
                 config: SmoothingConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Zero-lag low-pass of a pose track.

    Args:
        rotation: float [N, 3, 3] head-to-camera rotations; translation: float [N, 3] metres.
        frame_index: int [N] increasing source frame numbers (gaps = dropped frames).
        fps: frame rate of ``frame_index``.

    Returns:
        ``(rotation float64 [N, 3, 3], translation float64 [N, 3])``.
    """
    config = config or SmoothingConfig()
    rotation = np.asarray(rotation, np.float64)
    translation = np.asarray(translation, np.float64)
    frame_index = np.asarray(frame_index)
    if rotation.shape != (len(frame_index), 3, 3) or translation.shape != (len(frame_index), 3):
        raise ValueError(f"rotation [N, 3, 3], translation [N, 3] and frame_index [N] disagree: "
                         f"{rotation.shape}, {translation.shape}, {frame_index.shape}")
    if len(frame_index) == 0:
        return rotation, translation
    reference = mean_rotation(rotation)
    omega = rotation_log(np.einsum("ji,njk->nik", reference, rotation))   # Rrefᵀ R_t
    out_omega, out_trans = omega.copy(), translation.copy()
    for part in runs(frame_index, config.max_gap):
        w = _replace_outliers(omega[part], np.radians(config.outlier_deg))
        t = _replace_outliers(translation[part], config.outlier_mm / 1000.0)
        out_omega[part] = _lowpass(w, fps, config)
        out_trans[part] = _lowpass(t, fps, config)
    return reference @ rodrigues(out_omega), out_trans


def pose_jitter(rotation: np.ndarray, translation: np.ndarray, frame_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame shake: the second difference of the pose over consecutive frames.

    For three consecutive frames, rotation jitter is the angle between the two frame-to-frame rotations
    ``R_t R_{t−1}ᵀ`` and ``R_{t+1} R_tᵀ`` (a change of angular velocity), and translation jitter is
    ``‖t_{t+1} − 2 t_t + t_{t−1}‖``. Smooth motion scores ≈ 0 whatever its speed; noise scores high.

    Returns:
        ``(degrees float64 [M], millimetres float64 [M])`` for the M frames whose both neighbours exist.
    """
    frame_index = np.asarray(frame_index)
    if len(frame_index) < 3:
        return np.zeros(0), np.zeros(0)
    centre = np.flatnonzero((frame_index[1:-1] - frame_index[:-2] == 1) & (frame_index[2:] - frame_index[1:-1] == 1)) + 1
    if centre.size == 0:
        return np.zeros(0), np.zeros(0)
    r_prev, r_mid, r_next = rotation[centre - 1], rotation[centre], rotation[centre + 1]
    step_a = np.einsum("nij,nkj->nik", r_mid, r_prev)     # R_t R_{t−1}ᵀ
    step_b = np.einsum("nij,nkj->nik", r_next, r_mid)     # R_{t+1} R_tᵀ
    change = np.einsum("nij,nkj->nik", step_b, step_a)    # step_b step_aᵀ
    degrees = np.degrees(np.linalg.norm(rotation_log(change), axis=-1))
    second = translation[centre + 1] - 2 * translation[centre] + translation[centre - 1]
    return degrees, 1000.0 * np.linalg.norm(second, axis=-1)
