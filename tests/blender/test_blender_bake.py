"""The rig from a fresh ``dyntet generate`` in Blender: PCA and corrective imports, control curves as CSV,
and Bake exact through a real backend on loopback (edited curves → the backend's true meshes, exactly).

The avatar (a tiny trained run with named controls) is built by ``rigged_run.py`` in a subprocess, so
torch never loads into this process (the add-on must work without it).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytest.importorskip("dyntet.server.app")

from blender_addon.blender.animation import curves_of  # noqa: E402
from blender_addon.blender.control_rig import control_curves, corrective_key_name  # noqa: E402
from blender_addon.blender.importer import ImportOptions, import_sequence  # noqa: E402
from dyntet_formats.curves import read_curves  # noqa: E402
from dyntet_formats.sequence import read_sequence  # noqa: E402

from blender_helpers import serve  # noqa: E402
from rigged_run import SEQUENCE  # noqa: E402
from test_blender_backend import job_of, prefs, runtime, timed_operator, wait_for  # noqa: E402,F401
from test_blender_import import TOLERANCE_M, evaluated_coords, expected_world, world_vertices  # noqa: E402

HERE = Path(__file__).resolve().parent
PCA_MAX_ERROR_M = 1e-3
"""The PCA rig ``generate`` writes keeps every vertex within 1 mm (``PcaConfig.max_error_mm``)."""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rigged") / "workspace"
    run = subprocess.run([sys.executable, str(HERE / "rigged_run.py"), str(folder)], capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return folder


@pytest.fixture
def server(workspace: Path, tmp_path: Path):
    """``dyntet serve`` on the workspace (this checkout's code, on loopback)."""
    with serve(workspace, tmp_path / "serve.log") as address:
        yield address


def local_vertices(obj) -> np.ndarray:
    """float64 [V, 3] evaluated vertices of ``obj`` in head space (object space, Blender axes undone)."""
    co, _ = evaluated_coords(obj)
    return np.stack([co[:, 0], co[:, 2], -co[:, 1]], axis=1)


def test_pca_rig_of_a_fresh_generate_imports_within_its_tolerance(scene, workspace: Path) -> None:
    folder = workspace / SEQUENCE
    seq = read_sequence(folder, load_rig=True)
    result = import_sequence(scene, folder, ImportOptions(rig="pca"))
    keys = result.object.data.shape_keys.key_blocks
    assert len(keys) == 1 + seq.rig.num_targets and seq.rig.num_targets < seq.num_frames
    for n in range(seq.num_frames):
        scene.frame_set(1 + n)
        error = np.abs(world_vertices(result.object) - expected_world(seq.frame(n), seq.head_pose[n])).max()
        assert error <= PCA_MAX_ERROR_M, (n, error)


def test_named_controls_with_correctives_of_a_fresh_generate_are_exact(scene, workspace: Path) -> None:
    folder = workspace / SEQUENCE
    seq = read_sequence(folder)
    result = import_sequence(scene, folder, ImportOptions(rig="controls", corrective=True))
    assert result.object["dyntet_run"] == str((workspace / "runs" / "synth").resolve())
    for n in range(seq.num_frames):
        scene.frame_set(1 + n)
        error = np.abs(world_vertices(result.object) - expected_world(seq.frame(n), seq.head_pose[n])).max()
        assert error <= TOLERANCE_M, (n, error)


def test_control_curves_go_out_and_come_back_as_csv(addon, scene, workspace: Path, tmp_path: Path) -> None:
    result = import_sequence(scene, workspace / SEQUENCE, ImportOptions(rig="controls", frame_start=5))
    obj = result.object
    bpy.context.view_layer.objects.active = obj
    names = list(obj["dyntet_controls"])
    before = control_curves(obj, names, 5, result.num_frames)
    assert bpy.ops.dyntet.export_curves(filepath=str(tmp_path / "take.csv")) == {"FINISHED"}
    exported = read_curves(tmp_path / "take.csv", scene.render.fps)
    assert exported.names == tuple(names)
    np.testing.assert_allclose(exported.values, before, atol=1e-6)

    # A Live Link Face–style take: a louder jaw, one column we have no control for; the rest keeps its curves.
    rows = ["Timecode,BlendShapeCount,JawOpen,tongueOut"]
    rows += [f"00:00:00:{t:02d}.000,2,{0.05 * t:.6f},0.3" for t in range(20)]
    (tmp_path / "llf.csv").write_text("\n".join(rows) + "\n")
    assert bpy.ops.dyntet.import_curves(filepath=str(tmp_path / "llf.csv")) == {"FINISHED"}
    after = control_curves(obj, names, 5, 20)
    np.testing.assert_allclose(after[:, names.index("jawOpen")], 0.05 * np.arange(20), atol=1e-6)
    other = names.index("eyeBlinkLeft")
    np.testing.assert_allclose(after[:result.num_frames, other], before[:, other], atol=1e-6)


def test_bake_exact_makes_the_edited_frames_the_backends_meshes(prefs, server, workspace: Path) -> None:  # noqa: F811
    prefs.mode, prefs.remote_address = "REMOTE", server
    scene = bpy.context.scene
    result = import_sequence(scene, workspace / SEQUENCE, ImportOptions(rig="controls", corrective=True,
                                                                        head_motion=False))
    obj = result.object
    bpy.context.view_layer.objects.active = obj
    names = list(obj["dyntet_controls"])
    key_data = obj.data.shape_keys
    untouched = {n: np.array([p.co[:] for p in key_data.key_blocks[corrective_key_name(n)].points])
                 for n in (0, 15)}

    # The artist opens the jaw wide over the take and blinks the left eye (edited F-curve keys).
    curves = {c.data_path: c for c in curves_of(key_data)}
    for name, value in (("jawOpen", 1.2), ("eyeBlinkLeft", 0.9)):
        curve = curves[f'key_blocks["{name}"].value']
        for point in curve.keyframe_points:
            point.co[1] = value * (point.co[0] - 1) / 15
        curve.update()
    scene.frame_start, scene.frame_end = 5, 12

    timed_operator(bpy.ops.dyntet.connect)
    wait_for(lambda: runtime().STATE.connected, 90, "the local backend")
    assert "bake" in runtime().STATE.job_kinds
    started = time.perf_counter()
    assert timed_operator(bpy.ops.dyntet.bake_exact) == {"FINISHED"}
    wait_for(lambda: any("baked frames 5–12" in line for line in runtime().STATE.log) or
             (job_of("bake") is not None and job_of("bake").state in ("failed", "cancelled")), 300, "the bake")
    print(f"bake of 8 frames: {time.perf_counter() - started:.2f} s")
    assert job_of("bake").state == "done", job_of("bake").error_message

    baked = np.load(workspace / "bakes" / bpy.path.clean_name(obj.name) / "vertices.npy")
    assert baked.shape == (8, result.object.data.vertices.__len__(), 3)
    seq = read_sequence(workspace / SEQUENCE)
    for row, frame in enumerate(range(5, 13)):
        scene.frame_set(frame)
        error = np.abs(local_vertices(obj) - baked[row]).max()
        assert error <= TOLERANCE_M, (frame, error)
    assert np.abs(baked[-1] - seq.frame(11)).max() > 1e-4  # the edit changed the meshes
    for n, points in untouched.items():  # frames outside the range keep their correctives
        np.testing.assert_array_equal(np.array([p.co[:] for p in key_data.key_blocks[corrective_key_name(n)].points]),
                                      points)
