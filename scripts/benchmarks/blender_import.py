"""``bench.py blender-import``: import 1000 frames × ≈30k vertices as shape keys, ours vs the MDD way.

*ours*: the add-on's importer on a sequence folder on disk (read, validate, mesh, Basis + one shape key
per frame written with ``foreach_set``, one-hot CONSTANT F-curves built in bulk, head-pose keys).

*naive*: what Blender's MDD importer does for each frame — ``shape_key_add``, every vertex's ``co``
assigned from Python, then three ``keyframe_insert`` calls on the key's value. It is measured on the
first ``NAIVE_FRAMES`` frames and its per-frame loop extrapolated linearly to the whole sequence (the
mesh creation is counted once); set ``DYNTET_BENCH_NAIVE_FULL=1`` to time every frame instead.

Figures: ``frames``, ``vertices``, ``ours_s``, ``naive_s``, ``naive_measured_frames``, ``ratio``
(naive / ours; target ≥ 20), ``peak_rss_mb`` (whole process), ``max_error_m`` (evaluated mesh vs the
sequence on a few frames; must be ≤ 1e-5).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
FRAMES = 1000
RINGS, SEGMENTS = 150, 200
"""Lat-long sphere: (RINGS − 1) · SEGMENTS + 2 = 29 802 vertices, 59 600 triangles."""
NAIVE_FRAMES = 100
FRAME_START = 1


def _sphere() -> tuple[np.ndarray, np.ndarray]:
    theta = np.pi * np.arange(1, RINGS) / RINGS
    phi = 2 * np.pi * np.arange(SEGMENTS) / SEGMENTS
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]).astype(np.float32) * 0.1
    south = len(verts) - 1

    def idx(i: int, j: np.ndarray) -> np.ndarray:
        return 1 + (i - 1) * SEGMENTS + j % SEGMENTS

    j = np.arange(SEGMENTS)
    faces = [np.stack([np.zeros_like(j), idx(1, j + 1), idx(1, j)], 1),
             np.stack([np.full_like(j, south), idx(RINGS - 1, j), idx(RINGS - 1, j + 1)], 1)]
    for i in range(1, RINGS - 1):
        a, b, c, d = idx(i, j), idx(i, j + 1), idx(i + 1, j), idx(i + 1, j + 1)
        faces += [np.stack([a, b, c], 1), np.stack([b, d, c], 1)]
    return verts, np.concatenate(faces).astype(np.int32)


def write_sequence_folder(folder: Path) -> None:
    """A sequence folder written frame by frame into a memory-mapped .npy (no 360 MB array in RAM)."""
    import json

    base, faces = _sphere()
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "faces.npy", faces)
    vertices = np.lib.format.open_memmap(folder / "vertices.npy", mode="w+", dtype=np.float32,
                                         shape=(FRAMES, len(base), 3))
    wave = np.sin(base[:, 0] * 40.0)[:, None]
    for t in range(FRAMES):
        vertices[t] = base + 0.004 * np.sin(t / 7.0) * wave * np.array([0.0, 1.0, 0.5], np.float32)
    vertices.flush()
    del vertices
    pose = np.tile(np.eye(4, dtype=np.float32), (FRAMES, 1, 1))
    angle = 0.2 * np.sin(np.arange(FRAMES) / 25.0)
    pose[:, 0, 0], pose[:, 0, 2], pose[:, 2, 0], pose[:, 2, 2] = np.cos(angle), np.sin(angle), -np.sin(angle), np.cos(angle)
    np.save(folder / "head_pose.npy", pose)
    manifest = {"format": "dyntet-sequence", "version": 1, "num_frames": FRAMES, "num_vertices": len(base),
                "num_faces": len(faces), "fps": 25.0, "has_audio": False, "textures": {},
                "source": {"kind": "bench.py blender-import"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def naive_import(vertices: np.ndarray, faces: np.ndarray, frames: int) -> tuple[float, float]:
    """Blender's MDD importer's approach on ``frames`` frames; returns (setup seconds, per-frame loop seconds)."""
    import bpy

    from blender_addon.io.convert import points_to_blender

    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    scene = bpy.context.scene
    started = time.perf_counter()
    mesh = bpy.data.meshes.new("naive")
    mesh.from_pydata(points_to_blender(vertices[0]).tolist(), [], faces.tolist())
    obj = bpy.data.objects.new("naive", mesh)
    scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    setup = time.perf_counter() - started
    started = time.perf_counter()
    for t in range(frames):
        key = obj.shape_key_add(name=f"frame_{t:04d}")
        coords = points_to_blender(vertices[t])
        for point, co in zip(key.data, coords):
            point.co = co
        frame = FRAME_START + t
        key.value = 0.0
        key.keyframe_insert("value", frame=frame - 1)
        key.value = 1.0
        key.keyframe_insert("value", frame=frame)
        key.value = 0.0
        key.keyframe_insert("value", frame=frame + 1)
    return setup, time.perf_counter() - started


def run() -> dict:
    sys.path.insert(0, str(REPO))
    import bpy

    from blender_addon.blender.importer import ImportOptions, import_sequence
    from dyntet_formats.sequence import read_sequence

    with tempfile.TemporaryDirectory(prefix="dyntet-bench-") as tmp:
        folder = Path(tmp) / "seq"
        print(f"writing a {FRAMES}-frame sequence of {(RINGS - 1) * SEGMENTS + 2} vertices …", flush=True)
        write_sequence_folder(folder)

        bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
        scene = bpy.context.scene
        result = import_sequence(scene, folder, ImportOptions(frame_start=FRAME_START))
        ours = result.seconds
        print(f"ours: {ours:.2f} s for {result.num_shape_keys} shape keys "
              f"({FRAMES / ours:.0f} frames/s)", flush=True)

        sequence = read_sequence(folder)
        errors = []
        for n in (0, FRAMES // 2, FRAMES - 1):
            scene.frame_set(FRAME_START + n)
            evaluated = result.object.evaluated_get(bpy.context.evaluated_depsgraph_get())
            mesh = evaluated.to_mesh()
            coords = np.empty(len(mesh.vertices) * 3, np.float32)
            mesh.vertices.foreach_get("co", coords)
            evaluated.to_mesh_clear()
            matrix = np.array(evaluated.matrix_world)
            world = coords.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
            pose = sequence.head_pose[n].astype(np.float64)
            moved = sequence.frame(n) @ pose[:3, :3].T + pose[:3, 3]
            errors.append(float(np.abs(world - np.stack([moved[:, 0], -moved[:, 2], moved[:, 1]], 1)).max()))
        print(f"check: max error {max(errors):.2e} m on frames 0, {FRAMES // 2}, {FRAMES - 1}", flush=True)

        full = os.environ.get("DYNTET_BENCH_NAIVE_FULL") == "1"
        measured = FRAMES if full else NAIVE_FRAMES
        setup, loop = naive_import(sequence.vertices, sequence.faces, measured)
        naive = setup + loop * FRAMES / measured
        note = "" if full else (f" (mesh {setup:.2f} s + per-frame loop measured on {measured} frames: "
                                f"{loop:.2f} s, extrapolated linearly)")
        print(f"naive (MDD importer's way): {naive:.1f} s{note}", flush=True)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    ratio = naive / ours
    print(f"ratio {ratio:.0f}× (target ≥ 20); ours target ≤ 10 s; peak RSS {peak:.0f} MB", flush=True)
    return {
        "frames": FRAMES,
        "vertices": int(sequence.num_vertices),
        "ours_s": round(ours, 3),
        "naive_s": round(naive, 2),
        "naive_measured_frames": measured,
        "ratio": round(ratio, 1),
        "peak_rss_mb": round(peak, 1),
        "max_error_m": max(errors),
    }
