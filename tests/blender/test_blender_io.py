"""The bpy-free layer: reading sequence folders and the axis / pose / keyframe arithmetic."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from blender_addon.io.convert import (
    Y_UP_TO_Z_UP,
    curve_coords,
    decompose_poses,
    fps_to_blender,
    matrices_to_quaternions,
    one_hot_keyframes,
    points_to_blender,
    poses_to_blender,
)
from dyntet_formats.sequence import SequenceFormatError, normalise_rig, read_sequence
from blender_helpers import REPO


@pytest.fixture
def seq_copy(sequence_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic sequence that a test may break."""
    return Path(shutil.copytree(sequence_dir, tmp_path / "seq"))


def _edit_manifest(folder: Path, **changes) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


# -- reading -------------------------------------------------------------------------------------------


def test_reads_every_part(sequence_dir: Path) -> None:
    seq = read_sequence(sequence_dir, load_rig=True)
    vertices = np.load(sequence_dir / "vertices.npy")
    assert seq.num_frames == 12 and seq.num_vertices == vertices.shape[1]
    assert seq.faces.dtype == np.int32 and seq.faces.shape == (seq.num_faces, 3)
    np.testing.assert_array_equal(seq.frame(5), vertices[5])
    assert seq.fps == 25.0
    assert set(seq.textures) == {"base_color", "orm"}
    assert seq.environment is not None and seq.audio is not None
    assert seq.uv is not None and seq.uv_faces.shape == seq.faces.shape
    assert seq.rig is not None and seq.rig.weights.shape == (12, seq.rig.num_targets)


def test_frame_range_selects_frames(sequence_dir: Path) -> None:
    seq = read_sequence(sequence_dir, frames=(3, 7), load_rig=True)
    full = np.load(sequence_dir / "vertices.npy")
    assert seq.num_frames == 4 and seq.first_frame == 3
    np.testing.assert_array_equal(seq.frame(0), full[3])
    np.testing.assert_array_equal(seq.head_pose, np.load(sequence_dir / "head_pose.npy")[3:7])
    assert seq.rig.weights.shape[0] == 4
    with pytest.raises(SequenceFormatError, match="does not fit"):
        read_sequence(sequence_dir, frames=(5, 20))
    with pytest.raises(IndexError):
        seq.frame(4)


def test_missing_manifest_says_what_the_folder_is(tmp_path: Path) -> None:
    with pytest.raises(SequenceFormatError, match="no manifest.json"):
        read_sequence(tmp_path)
    with pytest.raises(SequenceFormatError, match="not a folder"):
        read_sequence(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "dyntet-dataset"}, "expected 'dyntet-sequence'"),
        ({"version": 2}, "update DynTet"),
        ({"version": "1"}, "positive integer"),
        ({"fps": 0}, "fps"),
        ({"fps": True}, "fps"),
        ({"num_frames": 13}, "num_frames = 13"),
        ({"textures": ["base_color"]}, "textures must be an object"),
    ],
)
def test_manifest_errors(seq_copy: Path, changes: dict, message: str) -> None:
    _edit_manifest(seq_copy, **changes)
    with pytest.raises(SequenceFormatError, match=message):
        read_sequence(seq_copy)


def test_array_errors_name_the_file(seq_copy: Path) -> None:
    faces = np.load(seq_copy / "faces.npy")
    np.save(seq_copy / "faces.npy", faces.astype(np.float32))
    with pytest.raises(SequenceFormatError, match="faces.npy must hold integers"):
        read_sequence(seq_copy)
    faces[0, 0] = 10_000
    np.save(seq_copy / "faces.npy", faces)
    with pytest.raises(SequenceFormatError, match="faces.npy indexes vertices"):
        read_sequence(seq_copy)


def test_pose_count_must_match(seq_copy: Path) -> None:
    np.save(seq_copy / "head_pose.npy", np.load(seq_copy / "head_pose.npy")[:5])
    with pytest.raises(SequenceFormatError, match="5 poses"):
        read_sequence(seq_copy)


def test_pickled_arrays_are_refused(seq_copy: Path) -> None:
    np.save(seq_copy / "head_pose.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SequenceFormatError, match="without pickles"):
        read_sequence(seq_copy)


def test_missing_texture_listed_in_manifest(seq_copy: Path) -> None:
    (seq_copy / "textures" / "orm.png").unlink()
    with pytest.raises(SequenceFormatError, match="orm"):
        read_sequence(seq_copy)


def test_rig_is_required_only_when_asked(seq_copy: Path) -> None:
    (seq_copy / "rig.npz").unlink()
    assert read_sequence(seq_copy).rig is None
    with pytest.raises(SequenceFormatError, match="Generate the sequence again.*Per-Frame Shape Keys"):
        read_sequence(seq_copy, load_rig=True)


def test_rig_shapes_are_checked(seq_copy: Path) -> None:
    with np.load(seq_copy / "rig.npz") as rig:
        arrays = dict(rig)
    arrays["weights"] = arrays["weights"][:, :2]
    np.savez(seq_copy / "rig.npz", **arrays)
    with pytest.raises(SequenceFormatError, match="rig.npz weights"):
        read_sequence(seq_copy, load_rig=True)


def test_normalise_rig_keeps_every_frame(sequence_dir: Path) -> None:
    rig = read_sequence(sequence_dir, load_rig=True).rig
    norm = normalise_rig(rig)
    assert np.abs(norm.weights).max() == pytest.approx(1.0)
    before = np.einsum("tk,kvc->tvc", rig.weights, rig.targets)
    after = np.einsum("tk,kvc->tvc", norm.weights, norm.targets)
    np.testing.assert_allclose(after, before, atol=1e-7)


def test_io_and_control_import_without_bpy() -> None:
    """The format and backend-control layers must stay usable outside Blender."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'bpy' or name.startswith('bpy.') or name == 'torch' or name.startswith('dyntet.'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import dyntet_formats.sequence, blender_addon.io.convert\n"
        "import blender_addon.control.state, blender_addon.control.worker, blender_addon.control.local\n"
        "import blender_addon.control.records, blender_addon.control.transfer, blender_addon.control.commands\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- conversion ------------------------------------------------------------------------------------------


def test_axis_conversion_is_y_up_to_z_up() -> None:
    assert points_to_blender(np.array([[1.0, 2.0, 3.0]])).tolist() == [[1.0, -3.0, 2.0]]
    np.testing.assert_allclose(Y_UP_TO_Z_UP @ [0, 1, 0], [0, 0, 1])  # up stays up
    assert np.linalg.det(Y_UP_TO_Z_UP) == pytest.approx(1.0)  # a rotation: handedness kept
    with pytest.raises(ValueError):
        points_to_blender(np.zeros((4, 2)))


def _random_rigid(rng: np.random.Generator, count: int) -> np.ndarray:
    q = rng.normal(size=(count, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    rot = np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], 1)
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, :3, :3] = rot
    poses[:, :3, 3] = rng.normal(size=(count, 3))
    return poses


def test_pose_conjugation_moves_points_like_the_head_space_pose() -> None:
    rng = np.random.default_rng(1)
    poses = _random_rigid(rng, 5)
    points = rng.normal(size=(7, 3))
    for pose, converted in zip(poses, poses_to_blender(poses)):
        moved_then_converted = points_to_blender(points @ pose[:3, :3].T + pose[:3, 3])
        converted_then_moved = points_to_blender(points) @ converted[:3, :3].T + converted[:3, 3]
        np.testing.assert_allclose(converted_then_moved, moved_then_converted, atol=1e-5)


def _quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@settings(max_examples=60, deadline=None)
@given(hs.integers(0, 2**32 - 1), hs.floats(0.2, 3.0))
def test_decompose_rebuilds_the_matrix(seed: int, scale: float) -> None:
    poses = _random_rigid(np.random.default_rng(seed), 4)
    poses[:, :3, :3] *= scale
    location, rotation, scales = decompose_poses(poses)
    for t in range(4):
        rebuilt = _quat_to_matrix(rotation[t].astype(np.float64)) * scales[t].astype(np.float64)[None, :]
        np.testing.assert_allclose(rebuilt, poses[t, :3, :3], atol=2e-5 * scale)
        np.testing.assert_allclose(location[t], poses[t, :3, 3], atol=1e-5)


def test_quaternions_stay_in_one_hemisphere() -> None:
    # A steady turn through 350 degrees: without sign continuity the quaternion flips at 180 degrees.
    angles = np.radians(np.arange(0, 360, 10))
    poses = np.tile(np.eye(4), (len(angles), 1, 1))
    poses[:, 0, 0], poses[:, 0, 1], poses[:, 1, 0], poses[:, 1, 1] = (
        np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles))
    _, quats, _ = decompose_poses(poses)
    assert (np.einsum("ti,ti->t", quats[1:], quats[:-1]) > 0).all()


def test_mirror_poses_keep_a_proper_rotation() -> None:
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0])[None]
    _, quat, scale = decompose_poses(mirror)
    rebuilt = _quat_to_matrix(quat[0].astype(np.float64)) * scale[0][None, :]
    np.testing.assert_allclose(rebuilt, mirror[0, :3, :3], atol=1e-6)


def test_quaternion_pivots_cover_every_branch() -> None:
    rotations = np.array([
        np.eye(3),
        np.diag([1.0, -1.0, -1.0]),   # 180° about x: x is the pivot
        np.diag([-1.0, 1.0, -1.0]),   # about y
        np.diag([-1.0, -1.0, 1.0]),   # about z
    ])
    quats = matrices_to_quaternions(rotations)
    expected = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    np.testing.assert_allclose(np.abs(quats), expected, atol=1e-12)


@pytest.mark.parametrize(
    ("fps", "expected"),
    [(25.0, (25, 1.0)), (30000 / 1001, (30, 1.001)), (24000 / 1001, (24, 1.001)), (12.5, (12, 0.96))],
)
def test_fps_to_blender(fps: float, expected: tuple[int, float]) -> None:
    whole, base = fps_to_blender(fps)
    assert (whole, base) == expected
    assert whole / base == pytest.approx(fps, rel=1e-5)


def test_fps_must_be_positive() -> None:
    with pytest.raises(ValueError):
        fps_to_blender(0.0)


def test_one_hot_keys_make_exactly_one_key_active_per_frame() -> None:
    count, start = 5, 10
    curves = [one_hot_keyframes(i, count, start).reshape(-1, 2) for i in range(count)]
    for frame in range(start, start + count):
        active = []
        for curve in curves:
            # CONSTANT interpolation: the value of the last key at or before the frame (else the first).
            before = curve[curve[:, 0] <= frame]
            active.append((before[-1] if len(before) else curve[0])[1])
        assert active.count(1.0) == 1 and active.index(1.0) == frame - start
    with pytest.raises(ValueError):
        one_hot_keyframes(5, 5, 0)


def test_curve_coords_interleave() -> None:
    assert curve_coords(np.array([1, 2]), np.array([0.5, 0.25])).tolist() == [1.0, 0.5, 2.0, 0.25]
    with pytest.raises(ValueError):
        curve_coords(np.zeros(2), np.zeros(3))
