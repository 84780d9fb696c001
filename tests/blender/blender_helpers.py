"""Helpers of the Blender tests: small sequence folders (written with the backend's own
``write_sequence``) and free loopback ports.

The sequence is a lat-long sphere (radius 0.1 m, head space +Y up) whose "jaw" (lower half) opens and closes over time,
turning and drifting so head motion is visible; textures, a light probe, audio and a blend-shape rig.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from dyntet.formats.sequence import BlendShapeRig, Sequence, wav_bytes, write_sequence

REPO = Path(__file__).resolve().parents[2]
ADDON_MODULE = "blender_addon"


def sphere(rings: int = 12, segments: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertices [V, 3], faces [F, 3] (CCW from outside), uv [U, 2], uv_faces [F, 3] of a closed sphere."""
    verts = [(0.0, 1.0, 0.0)]
    for i in range(1, rings):
        theta = np.pi * i / rings
        for j in range(segments):
            phi = 2 * np.pi * j / segments
            verts.append((np.sin(theta) * np.sin(phi), np.cos(theta), np.sin(theta) * np.cos(phi)))
    verts.append((0.0, -1.0, 0.0))
    v = np.asarray(verts, dtype=np.float32)
    south = len(verts) - 1

    def ring(i: int, j: int) -> int:
        return 1 + (i - 1) * segments + j % segments

    faces = []
    for j in range(segments):
        faces.append((0, ring(1, j), ring(1, j + 1)))
        faces.append((south, ring(rings - 1, j + 1), ring(rings - 1, j)))
    for i in range(1, rings - 1):
        for j in range(segments):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j), ring(i + 1, j + 1)
            faces += [(a, c, b), (b, c, d)]
    f = np.asarray(faces, dtype=np.int32)
    # Orient outward: the normal of each face must point away from the centre.
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    flip = (n * v[f].mean(axis=1)).sum(axis=1) < 0
    f[flip] = f[flip][:, ::-1]
    uv = np.stack([np.arctan2(v[:, 0], v[:, 2]) / (2 * np.pi) + 0.5, v[:, 1] * 0.5 + 0.5], axis=1)
    return v, f, uv.astype(np.float32), f.copy()


def make_sequence(frames: int = 12, fps: float = 25.0, rig_targets: int = 3, seed: int = 0) -> Sequence:
    """A Sequence of ``frames`` frames with every optional part filled."""
    rng = np.random.default_rng(seed)
    base, faces, uv, uv_faces = sphere()
    base = base * 0.1
    t = np.arange(frames, dtype=np.float32)
    jaw = 0.02 * np.sin(2 * np.pi * t / max(frames, 2))[:, None, None]
    lower = (base[:, 1] < 0).astype(np.float32)[None, :, None]
    vertices = base[None] + jaw * lower * np.array([0.0, -1.0, 0.3], np.float32)
    vertices = vertices + rng.normal(0, 1e-4, vertices.shape).astype(np.float32)
    pose = np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1))
    angle = 0.3 * np.sin(t / 3.0)
    pose[:, 0, 0], pose[:, 0, 2], pose[:, 2, 0], pose[:, 2, 2] = np.cos(angle), np.sin(angle), -np.sin(angle), np.cos(angle)
    pose[:, :3, 3] = np.stack([0.01 * t, 0.02 * np.sin(t), -0.005 * t], axis=1)
    mean = vertices.mean(axis=0)
    centred = (vertices - mean).reshape(frames, -1)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(rig_targets, frames)
    rig = BlendShapeRig(
        mean=mean.astype(np.float32),
        targets=vt[:k].reshape(k, -1, 3).astype(np.float32),
        weights=(u[:, :k] * s[:k]).astype(np.float32),
    )
    texture = np.zeros((16, 16, 3), np.uint8)
    texture[..., 0] = np.arange(16)[:, None] * 16
    orm = np.full((16, 16, 3), (255, 128, 0), np.uint8)
    environment = np.ones((8, 16, 3), np.float32) * np.linspace(0.1, 4.0, 16, dtype=np.float32)[None, :, None]
    audio = wav_bytes(0.1 * np.sin(np.linspace(0, 440 * 2 * np.pi * frames / fps, int(16000 * frames / fps))))
    return Sequence(
        faces=faces, vertices=vertices.astype(np.float32), head_pose=pose, fps=fps, uv=uv, uv_faces=uv_faces,
        base_color=texture, orm=orm, environment=environment, audio=audio,
        source={"kind": "synthetic test sphere", "seed": seed}, rig=rig,
    )


def write_test_sequence(path: Path, **kwargs) -> Path:
    """Write :func:`make_sequence` (same keyword arguments) to ``path``; returns the folder."""
    return write_sequence(path, make_sequence(**kwargs))


def free_port_pair() -> int:
    """A port p with p and p + 1 free on loopback (a backend's requests and events)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65534:
            continue
        try:
            with socket.socket() as second:
                second.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports")


@contextmanager
def serve(workspace: Path, log_path: Path) -> Iterator[str]:
    """``dyntet serve`` on ``workspace`` as a studio would start it (this checkout's code, loopback, free
    ports); yields its request address and stops it afterwards."""
    port = free_port_pair()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dyntet.cli", "serve", "--workspace", str(workspace),
             "--bind", f"tcp://127.0.0.1:{port}", "--no-probe"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            yield f"tcp://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
