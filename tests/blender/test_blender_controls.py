"""The named-control rig in Blender: keys named after the controls, F-curves, exact correctives."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.blender.animation import curves_of  # noqa: E402
from blender_addon.blender.control_rig import control_curves  # noqa: E402
from blender_addon.blender.importer import ImportOptions, import_sequence  # noqa: E402
from dyntet_formats.sequence import SequenceFormatError, read_sequence  # noqa: E402

from test_blender_import import expected_world, world_vertices  # noqa: E402

NAMES = ["jawOpen", "eyeBlinkLeft"]


@pytest.fixture(scope="module")
def rigged_dir(sequence_dir: Path, tmp_path_factory) -> Path:
    """The test sphere with a controls.npz: jawOpen opens the lower half as the sequence's own jaw does."""
    out = tmp_path_factory.mktemp("rigged") / "head"
    shutil.copytree(sequence_dir, out)
    seq = read_sequence(out)
    vertices = np.asarray(seq.vertices)
    lower = vertices[0][:, 1] < 0
    basis = vertices[0].copy()
    jaw = basis.copy()
    jaw[lower] += np.array([0.0, -0.02, 0.006], np.float32)
    blink = basis.copy()
    blink[~lower] += np.array([0.0, 0.003, 0.0], np.float32)
    weights = np.stack([np.linspace(0.0, 1.0, seq.num_frames), np.zeros(seq.num_frames)], 1).astype(np.float32)
    np.savez(out / "controls.npz", names=np.array(NAMES), basis=basis, keys=np.stack([jaw, blink]),
             weights=weights, meta=np.array('{"slider_max": 1.5}'))
    return out


def test_controls_import_with_names_and_curves(scene, rigged_dir: Path) -> None:
    result = import_sequence(scene, rigged_dir, ImportOptions(rig="controls", corrective=False))
    keys = result.object.data.shape_keys.key_blocks
    assert [k.name for k in keys] == ["Basis", *NAMES]
    assert keys["jawOpen"].slider_max == pytest.approx(1.5)
    paths = {c.data_path for c in curves_of(result.object.data.shape_keys)}
    assert {f'key_blocks["{n}"].value' for n in NAMES} <= paths
    seq = read_sequence(rigged_dir)
    curves = control_curves(result.object, NAMES, 1, seq.num_frames)
    np.testing.assert_allclose(curves[:, 0], np.linspace(0.0, 1.0, seq.num_frames), atol=1e-6)


def test_jaw_open_moves_the_lower_half_down(scene, rigged_dir: Path) -> None:
    result = import_sequence(scene, rigged_dir, ImportOptions(rig="controls", corrective=False, head_motion=False))
    obj = result.object
    obj.data.shape_keys.animation_data_clear()
    keys = obj.data.shape_keys.key_blocks
    keys["jawOpen"].value = 0.0
    closed = world_vertices(obj)
    keys["jawOpen"].value = 1.0
    opened = world_vertices(obj)
    lower = closed[:, 2] < 0  # Blender +Z is head-space +Y
    assert np.all(opened[lower, 2] - closed[lower, 2] < -0.019)
    np.testing.assert_allclose(opened[~lower], closed[~lower], atol=1e-7)


def test_correctives_keep_every_frame_exact(scene, rigged_dir: Path) -> None:
    seq = read_sequence(rigged_dir)
    result = import_sequence(scene, rigged_dir, ImportOptions(rig="controls", corrective=True))
    assert len(result.object.data.shape_keys.key_blocks) == 1 + len(NAMES) + seq.num_frames
    for t in range(seq.num_frames):
        scene.frame_set(1 + t)
        np.testing.assert_allclose(world_vertices(result.object), expected_world(seq.vertices[t], seq.head_pose[t]),
                                   atol=1e-5)


def test_a_sequence_without_controls_says_run_rig(scene, sequence_dir: Path) -> None:
    with pytest.raises(SequenceFormatError, match="dyntet rig"):
        import_sequence(scene, sequence_dir, ImportOptions(rig="controls"))
    assert not bpy.data.objects
