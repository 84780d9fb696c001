"""A synthetic talking-head sequence for exporter tests and benchmarks (no trained model needed).

The head is a latitude–longitude subdivided ellipsoid (head-sized, face towards +Z) with a UV seam at the
back. Expressions are smooth, localised deformations driven by speech-like signals: a jaw that *rotates*
open (non-linear in its angle, so a linear rig cannot capture it in one shape), lip spread / pucker,
brow raises, eye blinks, cheek puffs and ``muscles`` random local pulls on the lower face; plus a small
per-frame random field standing in for the frame-to-frame jitter of a neural model. Head pose nods and
turns a little. It is a stand-in with realistic size, topology and motion statistics, not a face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dyntet.formats.sequence import Sequence


@dataclass
class SyntheticHeadConfig:
    """Size and motion of :func:`synthetic_sequence`."""

    num_frames: int = 300
    """T, frames."""
    rings: int = 126
    """Latitude rings including both poles (≥ 3); vertices V = (rings − 2) · segments + 2."""
    segments: int = 200
    """Longitude segments (≥ 3)."""
    fps: float = 25.0
    """Frame rate."""
    texture_size: int = 256
    """Side of the base-colour and ORM textures in pixels (0 for none)."""
    environment_height: int = 16
    """Height of the equirectangular environment map (0 for none)."""
    muscles: int = 16
    """Extra localised deformations on the lower face, each driven by its own speech-like signal
    (a tracked talking head has tens of active expression dimensions)."""
    jitter_mm: float = 0.05
    """RMS amplitude of the per-frame smooth random field, in millimetres."""
    seed: int = 0
    """Seed of every random choice."""

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.rings < 3 or self.segments < 3:
            raise ValueError(f"need rings >= 3 and segments >= 3, got {self.rings}, {self.segments}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if min(self.texture_size, self.environment_height, self.muscles, self.jitter_mm) < 0:
            raise ValueError("texture_size, environment_height, muscles and jitter_mm must be >= 0")


_JITTER_FEATURES = 128

AXES_M = np.array([0.075, 0.11, 0.095])
"""Semi-axes (x, y, z) of the ellipsoid in metres: a head ~15 cm wide, 22 cm tall, 19 cm deep."""


def ellipsoid_mesh(rings: int, segments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latitude–longitude ellipsoid with a UV seam at the back (φ = ±π).

    Returns:
        vertices float32 [V, 3], faces int32 [F, 3] (counter-clockwise from outside),
        uv float32 [U, 2] (origin bottom-left, v = 1 at the top pole), uv_faces int32 [F, 3].
    """
    inner = rings - 2
    theta = np.linspace(0.0, np.pi, rings)[1:-1]                  # polar angle from +Y, [inner]
    phi = -np.pi + 2 * np.pi * np.arange(segments) / segments     # azimuth from +Z towards +X, [segments]
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ring_pts = np.stack(np.broadcast_arrays(st * np.sin(phi), ct, st * np.cos(phi)), -1).reshape(-1, 3)
    top, bottom = inner * segments, inner * segments + 1
    vertices = np.concatenate([ring_pts, [[0, 1, 0], [0, -1, 0]]]) * AXES_M

    def vid(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return i * segments + j % segments

    def uid(i: np.ndarray, j: np.ndarray) -> np.ndarray:  # UV grid has segments + 1 columns (seam split)
        return i * (segments + 1) + j

    i, j = np.meshgrid(np.arange(inner - 1), np.arange(segments), indexing="ij")
    i, j = i.ravel(), j.ravel()
    quads_v = [vid(i, j), vid(i + 1, j), vid(i + 1, j + 1), vid(i, j + 1)]
    quads_u = [uid(i, j), uid(i + 1, j), uid(i + 1, j + 1), uid(i, j + 1)]
    jj = np.arange(segments)
    uv_grid_n = inner * (segments + 1)
    faces = np.concatenate([
        np.stack([quads_v[0], quads_v[1], quads_v[2]], 1),
        np.stack([quads_v[0], quads_v[2], quads_v[3]], 1),
        np.stack([np.full(segments, top), vid(0, jj), vid(0, jj + 1)], 1),
        np.stack([np.full(segments, bottom), vid(inner - 1, jj + 1), vid(inner - 1, jj)], 1),
    ])
    uv_faces = np.concatenate([
        np.stack([quads_u[0], quads_u[1], quads_u[2]], 1),
        np.stack([quads_u[0], quads_u[2], quads_u[3]], 1),
        np.stack([uv_grid_n + jj, uid(0, jj), uid(0, jj + 1)], 1),
        np.stack([uv_grid_n + segments + jj, uid(inner - 1, jj + 1), uid(inner - 1, jj)], 1),
    ])
    u = np.arange(segments + 1) / segments
    v = 1.0 - theta / np.pi
    uv_grid = np.stack(np.broadcast_arrays(u[None, :], v[:, None]), -1).reshape(-1, 2)
    u_mid = (jj + 0.5) / segments
    uv = np.concatenate([uv_grid, np.stack([u_mid, np.ones(segments)], 1), np.stack([u_mid, np.zeros(segments)], 1)])
    return (vertices.astype(np.float32), faces.astype(np.int32), uv.astype(np.float32), uv_faces.astype(np.int32))


def _smooth_signal(rng: np.random.Generator, t: np.ndarray, low_hz: float, high_hz: float, n: int = 5) -> np.ndarray:
    """Sum of ``n`` random sinusoids in a band, scaled to [-1, 1]; float64 [T]."""
    freq = rng.uniform(low_hz, high_hz, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    s = np.sin(2 * np.pi * freq[:, None] * t[None] + phase[:, None]).sum(0)
    return s / max(np.abs(s).max(), 1e-9)


def _bump(points: np.ndarray, centre: tuple[float, float, float], radius: float) -> np.ndarray:
    """Gaussian falloff float64 [V] around ``centre`` (metres)."""
    d2 = ((points - np.asarray(centre)) ** 2).sum(-1)
    return np.exp(-d2 / (2 * radius ** 2))


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return r_yaw @ r_pitch @ r_roll


def synthetic_sequence(config: SyntheticHeadConfig | None = None) -> Sequence:
    """Build the synthetic talking-head :class:`Sequence` described in the module docstring."""
    cfg = config or SyntheticHeadConfig()
    rng = np.random.default_rng(cfg.seed)
    rest, faces, uv, uv_faces = ellipsoid_mesh(cfg.rings, cfg.segments)
    p = rest.astype(np.float64)
    t = np.arange(cfg.num_frames) / cfg.fps
    front = lambda y: float(AXES_M[2] * np.sqrt(max(0.0, 1 - (y / AXES_M[1]) ** 2)))  # noqa: E731

    # Speech-like drivers: syllables at 3-6 Hz under a slower phrase envelope with pauses.
    envelope = np.clip(0.6 + 0.6 * _smooth_signal(rng, t, 0.1, 0.4, 3), 0, 1)
    jaw_angle = 0.22 * envelope * np.clip(0.5 + 0.5 * _smooth_signal(rng, t, 3.0, 6.0), 0, 1)   # radians
    spread = 0.6 * _smooth_signal(rng, t, 0.3, 1.5, 4)
    brows = np.clip(_smooth_signal(rng, t, 0.2, 1.0, 3), 0, 1)
    puff = np.clip(_smooth_signal(rng, t, 0.1, 0.5, 3), 0, 1) ** 2
    blink_times = np.cumsum(rng.uniform(2.0, 5.0, size=int(t[-1] / 2.0) + 2))
    blink = np.exp(-((t[:, None] - blink_times[None]) ** 2) / (2 * 0.05 ** 2)).sum(1).clip(0, 1)

    # Spatial weights on the rest shape.
    mouth_y = -0.035
    lower = 1 / (1 + np.exp((p[:, 1] - mouth_y) / 0.006))                          # below the mouth line
    jaw_w = lower * np.clip(p[:, 2] / AXES_M[2] + 0.3, 0, 1) ** 2                   # front of the lower face
    pivot = np.array([0.0, -0.005, -0.02])
    mouth = _bump(p, (0.0, mouth_y, front(mouth_y)), 0.022)
    brow_w = [_bump(p, (s * 0.03, 0.045, front(0.045)), 0.015) for s in (-1, 1)]
    eye_w = [_bump(p, (s * 0.032, 0.022, front(0.022)), 0.009) for s in (-1, 1)]
    cheek_w = [_bump(p, (s * 0.05, -0.02, front(-0.02) * 0.75), 0.02) for s in (-1, 1)]
    normals = p / AXES_M ** 2
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    muscle_w = np.zeros((len(p), cfg.muscles))
    muscle_dir = rng.standard_normal((cfg.muscles, 3)) * 0.0015                      # ~2.5 mm at full pull
    for m in range(cfg.muscles):
        x, y = rng.uniform(-0.045, 0.045), rng.uniform(-0.08, 0.0)
        muscle_w[:, m] = _bump(p, (x, y, front(y) * np.sqrt(max(0.0, 1 - (x / AXES_M[0]) ** 2))),
                               rng.uniform(0.008, 0.02))
    muscle_signal = envelope[:, None] * np.stack(
        [_smooth_signal(rng, t, 0.5, 4.0, 4) for _ in range(cfg.muscles)], 1) if cfg.muscles else None

    # Per-frame jitter: random Fourier features (wavelengths ~2-10 cm), fresh coefficients each frame,
    # so it is as high-dimensional as a network's frame-to-frame noise; RMS per vertex = jitter_mm.
    freqs = rng.standard_normal((3, _JITTER_FEATURES)) * (2 * np.pi / 0.04)
    basis = np.cos(p @ freqs + rng.uniform(0, 2 * np.pi, _JITTER_FEATURES)) * np.sqrt(2.0)   # unit mean square
    jitter_coef = rng.standard_normal((cfg.num_frames, _JITTER_FEATURES, 3)) * (
        cfg.jitter_mm * 1e-3 / np.sqrt(3.0 * _JITTER_FEATURES))

    vertices = np.empty((cfg.num_frames, len(p), 3), dtype=np.float32)
    for f in range(cfg.num_frames):
        a = jaw_angle[f]
        rot = np.array([[1, 0, 0], [0, np.cos(a), np.sin(a)], [0, -np.sin(a), np.cos(a)]])  # chin down and back
        q = p + jaw_w[:, None] * (((p - pivot) @ rot.T + pivot) - p)
        q[:, 0] += spread[f] * 0.18 * p[:, 0] * mouth
        q[:, 2] -= spread[f] * 0.004 * mouth
        q[:, 1] += brows[f] * 0.004 * (brow_w[0] + brow_w[1])
        q[:, 1] -= blink[f] * 0.004 * (eye_w[0] + eye_w[1])
        q += (puff[f] * 0.006 * (cheek_w[0] + cheek_w[1]))[:, None] * normals
        if cfg.muscles:
            q += muscle_w @ (muscle_signal[f, :, None] * muscle_dir)
        q += basis @ jitter_coef[f]
        vertices[f] = q

    head_pose = np.zeros((cfg.num_frames, 4, 4), dtype=np.float32)
    yaw = np.radians(10) * _smooth_signal(rng, t, 0.05, 0.3, 3)
    pitch = np.radians(6) * _smooth_signal(rng, t, 0.1, 0.5, 3)
    roll = np.radians(3) * _smooth_signal(rng, t, 0.05, 0.3, 3)
    for f in range(cfg.num_frames):
        head_pose[f, :3, :3] = _rotation(yaw[f], pitch[f], roll[f])
    head_pose[:, :3, 3] = 0.01 * np.stack([_smooth_signal(rng, t, 0.05, 0.3, 2) for _ in range(3)], 1)
    head_pose[:, 3, 3] = 1.0

    base_color = orm = environment = None
    if cfg.texture_size:
        base_color, orm = _textures(cfg.texture_size)
    if cfg.environment_height:
        environment = _environment(cfg.environment_height)
    return Sequence(
        faces=faces, vertices=vertices, head_pose=head_pose, fps=float(cfg.fps), uv=uv, uv_faces=uv_faces,
        base_color=base_color, orm=orm, environment=environment,
        camera={"intrinsics": [600.0, 600.0, 256.0, 256.0], "size": 512,
                "camera_to_scene": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0.6], [0, 0, 0, 1]]},
        source={"synthetic": "ellipsoid talking head", "seed": cfg.seed, "rings": cfg.rings,
                "segments": cfg.segments},
    )


def _textures(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth procedural skin (sRGB uint8 [S, S, 3]) and ORM (linear uint8 [S, S, 3]); row 0 = v = 1."""
    v, u = np.meshgrid(1 - (np.arange(size) + 0.5) / size, (np.arange(size) + 0.5) / size, indexing="ij")
    d_lips = ((u - 0.5) / 0.06) ** 2 + ((v - 0.61) / 0.02) ** 2
    d_eyes = np.minimum(((u - 0.44) / 0.02) ** 2, ((u - 0.56) / 0.02) ** 2) + ((v - 0.56) / 0.012) ** 2
    skin = np.array([224, 172, 150]) * (0.9 + 0.1 * np.cos(2 * np.pi * u))[..., None]
    color = skin * (1 - np.exp(-d_lips))[..., None] + np.array([170, 70, 80]) * np.exp(-d_lips)[..., None]
    color = color * (1 - np.exp(-d_eyes))[..., None] + np.array([40, 30, 25]) * np.exp(-d_eyes)[..., None]
    rough = 0.55 - 0.2 * np.exp(-d_lips) - 0.3 * np.exp(-d_eyes)
    orm = np.stack([0.7 + 0.3 * np.sin(np.pi * v), rough, np.zeros_like(u)], -1)
    return (np.clip(color, 0, 255).round().astype(np.uint8), np.clip(orm * 255, 0, 255).round().astype(np.uint8))


def _environment(height: int) -> np.ndarray:
    """A sky-over-ground equirectangular radiance map, float32 [H, 2H, 3]."""
    elevation = np.pi / 2 - (np.arange(height) + 0.5) / height * np.pi
    sky = np.where(elevation > 0, 1.0 + 2.0 * np.sin(elevation), 0.3)
    rgb = sky[:, None, None] * np.array([0.8, 0.9, 1.0])
    return np.broadcast_to(rgb, (height, 2 * height, 3)).astype(np.float32).copy()
