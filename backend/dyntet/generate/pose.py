"""Head motion of a generated sequence: which clip it comes from, smoothing, and the scene frame.

A sequence stores ``head_pose[t]``, the rigid **head-to-scene** transform of frame t. We define the
*scene* as the head space of the pose track's mean pose ``P̄`` (chordal mean of the head-to-camera
rotations, mean of the translations):

    head_to_scene[t] = P̄⁻¹ · P[t]                  (P[t]: head-to-camera of the frame driving the pose)

so the scene origin sits where the head is on average, the scene axes are the head's axes there (+Y up,
+Z out of the face), poses stay close to identity, and any camera that saw the clip is placed in the scene
by ``camera_to_scene = P̄_camera⁻¹`` (a head-to-camera ``P̄_camera`` of the head at the scene origin).
With poses from the avatar's own footage, ``P̄_camera = P̄`` and rendering ``P̄_camera · head_to_scene[t]``
reproduces the footage's camera exactly; with another clip's poses, ``P̄_camera`` is the avatar's own
mean pose, so the moving head sits where the avatar's background plate expects it.
"""

from __future__ import annotations

import numpy as np

from dyntet.face.smoothing import SmoothingConfig, mean_rotation, smooth_poses


def mean_pose(poses: np.ndarray) -> np.ndarray:
    """Rigid mean of poses float [N, 4, 4] (N ≥ 1): chordal mean rotation, mean translation → float64 [4, 4]."""
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
        raise ValueError(f"poses must be [N, 4, 4] with N >= 1, got {poses.shape}")
    out = np.eye(4)
    out[:3, :3] = mean_rotation(poses[:, :3, :3])
    out[:3, 3] = poses[:, :3, 3].mean(0)
    return out


def rigid_inverse(pose: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms float [..., 4, 4] (rotation + translation) → float64 [..., 4, 4]."""
    pose = np.asarray(pose, np.float64)
    out = np.zeros_like(pose)
    rot_t = np.swapaxes(pose[..., :3, :3], -1, -2)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rot_t, pose[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def smooth(poses: np.ndarray, fps: float, cutoff_hz: float, frame_index: np.ndarray | None = None) -> np.ndarray:
    """Zero-lag low-pass of a pose track float [N, 4, 4] (``dyntet.face.smoothing``).

    ``frame_index`` int [N] (a dataset's ``tracking.frame_index``) marks dropped frames: runs on either
    side of a gap are filtered separately. ``cutoff_hz <= 0`` returns the poses unchanged.
    Returns float64 [N, 4, 4].
    """
    poses = np.asarray(poses, np.float64)
    if cutoff_hz <= 0 or len(poses) < 4:
        return poses.copy()
    index = np.arange(len(poses)) if frame_index is None else np.asarray(frame_index)
    rotation, translation = smooth_poses(poses[:, :3, :3], poses[:, :3, 3], index, fps,
                                         SmoothingConfig(cutoff_hz=cutoff_hz))
    out = np.tile(np.eye(4), (len(poses), 1, 1))
    out[:, :3, :3] = rotation
    out[:, :3, 3] = translation
    return out


def head_to_scene(poses: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``reference⁻¹ · poses``: head-to-camera poses float [T, 4, 4] → head-to-scene float32 [T, 4, 4]."""
    out = rigid_inverse(reference)[None] @ np.asarray(poses, np.float64)
    out[:, 3] = (0.0, 0.0, 0.0, 1.0)
    return out.astype(np.float32)


def ping_pong(count: int, length: int) -> np.ndarray:
    """Indices 0, 1, …, length−1, length−2, …, 1, 0, 1, … (``count`` of them) into a clip of ``length``
    frames: borrowing a shorter clip's motion without a jump at the loop. int64 [count]."""
    if length < 1 or count < 0:
        raise ValueError(f"need a clip of >= 1 frame and a count >= 0, got length {length}, count {count}")
    if length == 1:
        return np.zeros(count, np.int64)
    period = 2 * (length - 1)
    phase = np.arange(count) % period
    return np.where(phase < length, phase, period - phase).astype(np.int64)
