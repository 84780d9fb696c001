"""Head space (+Y up, glTF) → Blender (+Z up), head poses → object transform channels, fps → Blender's pair.

Why here and not in the Blender layer: this is the arithmetic the import's correctness rests on, so it is
plain numpy and unit-tested without ``bpy``. Blender's frame is reached by ``(x, y, z) → (x, −z, y)``
(a +90° turn about X), the same convention Blender's own glTF importer uses.
"""

from __future__ import annotations

import numpy as np

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=np.float64)
"""float64 [3, 3]: rotation taking head-space (Y-up) vectors to Blender (Z-up) vectors."""


def points_to_blender(points: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Convert points ``[..., 3]`` from head space to Blender axes: ``(x, y, z) → (x, −z, y)``.

    Args:
        points: float [..., 3].
        out: optional float32 array of the same shape to write into (avoids an allocation per frame).

    Returns:
        float32 [..., 3].

    >>> points_to_blender(np.array([1.0, 2.0, 3.0])).tolist()
    [1.0, -3.0, 2.0]
    """
    points = np.asarray(points)
    if points.shape[-1:] != (3,):
        raise ValueError(f"points must have shape [..., 3], got {list(points.shape)}")
    if out is None:
        out = np.empty(points.shape, dtype=np.float32)
    out[..., 0] = points[..., 0]
    out[..., 1] = -points[..., 2]
    out[..., 2] = points[..., 1]
    return out


def poses_to_blender(poses: np.ndarray) -> np.ndarray:
    """Conjugate rigid transforms into Blender axes: ``A · P · Aᵀ`` with ``A`` = :data:`Y_UP_TO_Z_UP`.

    A vertex converted with :func:`points_to_blender` and moved by the returned matrix lands where the
    head-space pose puts it, converted.

    Args:
        poses: float [T, 4, 4] head-to-scene transforms in head space.

    Returns:
        float64 [T, 4, 4] in Blender axes.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"poses must have shape [T, 4, 4], got {list(poses.shape)}")
    axes = np.eye(4)
    axes[:3, :3] = Y_UP_TO_Z_UP
    return axes @ poses @ axes.T


def decompose_poses(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split affine transforms into location, rotation quaternion and scale channels for keyframing.

    Quaternions are ``(w, x, y, z)`` and sign-continuous from frame to frame, so linear interpolation of
    the F-curves between frames never swings the long way round.

    Args:
        poses: float [T, 4, 4] with no shear (rigid, or rigid times a positive per-axis scale).

    Returns:
        location float32 [T, 3], rotation float32 [T, 4] (w, x, y, z), scale float32 [T, 3].
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"poses must have shape [T, 4, 4], got {list(poses.shape)}")
    location = poses[:, :3, 3]
    linear = poses[:, :3, :3]
    scale = np.linalg.norm(linear, axis=1)  # column norms
    if (scale <= 1e-12).any():
        raise ValueError("a head pose has a zero scale; it cannot be an object transform")
    rotation = linear / scale[:, None, :]
    flip = np.linalg.det(rotation) < 0
    scale[flip, 0] *= -1.0
    rotation[flip, :, 0] *= -1.0
    quats = matrices_to_quaternions(rotation)
    # Sign continuity: q and -q are the same rotation; keep consecutive quaternions in one hemisphere.
    dots = np.einsum("ti,ti->t", quats[1:], quats[:-1])
    signs = np.cumprod(np.where(dots < 0, -1.0, 1.0))
    quats[1:] *= signs[:, None]
    return location.astype(np.float32), quats.astype(np.float32), scale.astype(np.float32)


def matrices_to_quaternions(rotations: np.ndarray) -> np.ndarray:
    """Rotation matrices float [T, 3, 3] → unit quaternions float64 [T, 4] ``(w, x, y, z)``, ``w ≥ 0``.

    Shepperd's method: pick the largest of the four squared components as the pivot, which keeps the
    division well conditioned for every rotation.
    """
    r = np.asarray(rotations, dtype=np.float64)
    trace = r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]
    squares = np.stack(
        [1 + trace, 1 + 2 * r[:, 0, 0] - trace, 1 + 2 * r[:, 1, 1] - trace, 1 + 2 * r[:, 2, 2] - trace], axis=1
    )
    pivot = squares.argmax(axis=1)
    quats = np.empty((r.shape[0], 4))
    for k in range(4):
        rows = pivot == k
        if not rows.any():
            continue
        m = r[rows]
        s = 2.0 * np.sqrt(np.maximum(squares[rows, k], 1e-300))
        if k == 0:
            q = [0.25 * s, (m[:, 2, 1] - m[:, 1, 2]) / s, (m[:, 0, 2] - m[:, 2, 0]) / s, (m[:, 1, 0] - m[:, 0, 1]) / s]
        elif k == 1:
            q = [(m[:, 2, 1] - m[:, 1, 2]) / s, 0.25 * s, (m[:, 0, 1] + m[:, 1, 0]) / s, (m[:, 0, 2] + m[:, 2, 0]) / s]
        elif k == 2:
            q = [(m[:, 0, 2] - m[:, 2, 0]) / s, (m[:, 0, 1] + m[:, 1, 0]) / s, 0.25 * s, (m[:, 1, 2] + m[:, 2, 1]) / s]
        else:
            q = [(m[:, 1, 0] - m[:, 0, 1]) / s, (m[:, 0, 2] + m[:, 2, 0]) / s, (m[:, 1, 2] + m[:, 2, 1]) / s, 0.25 * s]
        quats[rows] = np.stack(q, axis=1)
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    quats[quats[:, 0] < 0] *= -1.0
    return quats


def fps_to_blender(fps: float) -> tuple[int, float]:
    """Blender stores a frame rate as ``fps / fps_base``: 25 → (25, 1.0), 29.97 → (30, 1.001).

    >>> fps_to_blender(30000 / 1001)
    (30, 1.001)
    """
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    whole = max(1, int(round(fps)))
    base = whole / float(fps)
    return whole, round(base, 6)


def one_hot_keyframes(index: int, count: int, frame_start: int) -> np.ndarray:
    """Keyframes of shape key ``index`` of ``count`` per-frame keys: 1 on its own frame, 0 on the neighbours.

    With CONSTANT interpolation this makes exactly one key active on each frame. The first key has no
    "before" keyframe (frames before the start hold its value, 1) and the last none "after".

    Returns:
        float32 [2·N] interleaved ``(frame, value)`` pairs, N ∈ {1, 2, 3}, ready for
        ``keyframe_points.foreach_set("co", ...)``.

    >>> one_hot_keyframes(0, 3, 1).tolist()
    [1.0, 1.0, 2.0, 0.0]
    """
    if not 0 <= index < count:
        raise ValueError(f"index {index} is outside 0..{count - 1}")
    frame = frame_start + index
    pairs = [(frame, 1.0)]
    if index > 0:
        pairs.insert(0, (frame - 1, 0.0))
    if index < count - 1:
        pairs.append((frame + 1, 0.0))
    return np.asarray(pairs, dtype=np.float32).ravel()


def curve_coords(frames: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Interleave frames [N] and values [N] into float32 [2·N] ``(frame, value)`` pairs for ``foreach_set``."""
    frames = np.asarray(frames)
    values = np.asarray(values)
    if frames.shape != values.shape or frames.ndim != 1:
        raise ValueError(f"frames and values must be equal 1-D arrays, got {frames.shape} and {values.shape}")
    coords = np.empty(2 * frames.size, dtype=np.float32)
    coords[0::2] = frames
    coords[1::2] = values
    return coords
