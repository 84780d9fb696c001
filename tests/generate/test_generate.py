"""End to end: ``generate`` and ``render`` on the small avatar, the CLI's errors, the exported glb."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from dyntet.cli import main
from dyntet.formats.dataset import Dataset
from dyntet.generate.api import GenerateConfig, GenerateError, generate
from dyntet.generate.bake import BakeConfig
from dyntet.generate.drive import DriveOptions, FrameRange
from dyntet.formats.sequence import read_sequence
from dyntet.generate.video import RenderConfig, render_video
from dyntet.model.dyntet import expression_windows
from generate_helpers import AUDIO_RATE, FPS, NUM_FRAMES

SMALL_BAKE = BakeConfig(size=128)


@pytest.fixture(scope="module")
def own_sequence(run, tmp_path_factory):
    """The avatar replaying frames 4:28 of its own clip."""
    out = tmp_path_factory.mktemp("own") / "seq"
    config = GenerateConfig(drive="all", drive_options=DriveOptions(frames=FrameRange.parse("4:28")),
                            bake=SMALL_BAKE, environment_height=16)
    generate(run, out, config)
    return read_sequence(out)


@pytest.fixture(scope="module")
def cross_sequence(jaw_run, other_subject, tmp_path_factory):
    """The jaw-rigged avatar driven by another synthetic person (all of its frames)."""
    out = tmp_path_factory.mktemp("cross") / "seq"
    generate(jaw_run, out, GenerateConfig(drive=str(other_subject), bake=SMALL_BAKE, environment_height=16))
    return read_sequence(out)


def test_sequence_holds_one_topology_and_everything_else(own_sequence, loaded, geometry):
    seq = own_sequence
    assert seq.num_frames == 24 and seq.fps == FPS
    assert seq.faces.dtype == np.int32 and seq.vertices.dtype == np.float32
    # The stored faces are the topology any single frame decodes to, independently.
    expression = torch.from_numpy(loaded.dataset.tracking.expression)
    for frame in (4, 27):
        windows = expression_windows(expression, torch.tensor([frame]), loaded.config.model.geometry.expression_window)
        with torch.no_grad():
            meshes = loaded.model.meshes(windows)
        np.testing.assert_array_equal(seq.faces, meshes.faces.numpy())
        np.testing.assert_allclose(seq.vertices[frame - 4], meshes.vertices[0].numpy(), atol=2e-6)
    assert seq.base_color.shape == (128, 128, 3) and seq.orm.shape == (128, 128, 3)
    assert seq.environment.shape == (16, 32, 3) and (seq.environment > 0).all()
    np.testing.assert_array_equal(seq.uv_faces.shape, seq.faces.shape)
    # Audio: the 24 frames' worth, starting at frame 4.
    import wave
    with wave.open(str(seq.audio), "rb") as audio:
        assert audio.getframerate() == AUDIO_RATE
        assert abs(audio.getnframes() - 24 / FPS * AUDIO_RATE) <= 1
    # Camera: the avatar's camera sees the head where the footage did.
    camera_to_scene = np.array(seq.camera["camera_to_scene"])
    posed = np.linalg.inv(camera_to_scene)[None] @ seq.head_pose.astype(np.float64)
    np.testing.assert_allclose(posed, loaded.dataset.tracking.pose[4:28], atol=1e-3)
    assert seq.source["drive"]["kind"] == "split" and seq.source["frames"] == [4, 28]


def test_generate_writes_a_pca_rig_within_its_tolerance(own_sequence):
    """``rig.npz`` (what the add-on's PCA import reads) reproduces every frame within the default 1 mm."""
    seq = own_sequence
    assert seq.rig is not None and 1 <= seq.rig.num_targets < seq.num_frames
    error = np.linalg.norm(seq.rig.reconstruct() - np.asarray(seq.vertices), axis=-1)
    assert error.max() <= 1e-3 and seq.source["rig"]["max_mm"] == pytest.approx(error.max() * 1e3, abs=1e-3)


def test_cross_identity_drive_moves_the_jaw_with_the_drivers_jaw(cross_sequence, subject, other_subject, jaw_index):
    """Another person (different face-model points and proportions) drives the avatar: the avatar's mouth
    region must open and close with the driver's own jaw_open control."""
    seq = cross_sequence
    assert seq.num_frames == NUM_FRAMES and seq.source["retarget"]["correspondence"] == "surface"
    truth = np.load(other_subject / "synthetic_truth.npz")
    driver_jaw = Dataset.open(other_subject).tracking.expression[:, list(truth["controls"]).index("jaw_open")]
    assert driver_jaw.std() > 0.05, "the driver must actually talk for this test to mean something"
    # The avatar's mouth region: where its own face model's jaw_open shape moves most, and which way.
    face = Dataset.open(subject).face_model
    shape = face.expression_basis[jaw_index]
    strength = np.linalg.norm(shape, axis=1)
    moving = strength >= np.quantile(strength, 0.9)
    direction = shape[moving].mean(0) / np.linalg.norm(shape[moving].mean(0))
    rest = seq.vertices.mean(0)
    near, _ = cKDTree(face.mean_shape[moving]).query(rest, k=1)
    # The grid-32 mesh has a vertex every ≈ 1 cm, and this 80-step avatar's surface lies ≈ 2 cm from the
    # face model's at the jaw (measured 1.95–2.2 cm for its nearest vertices): 2 cm sat on that edge.
    region = near < 0.03
    assert region.sum() >= 10
    motion = ((seq.vertices[:, region] - rest[region]) @ direction).mean(1)              # metres, [T]
    correlation = np.corrcoef(motion, driver_jaw)[0, 1]
    assert correlation > 0.9, f"mouth motion vs driver jaw_open: r = {correlation:.2f}"
    assert np.ptp(motion) > 2e-3, f"the jaw should move visibly, moved {1000 * np.ptp(motion):.2f} mm"


def test_generated_glb_passes_the_khronos_validator(own_sequence, tmp_path):
    from dyntet.export.gltf import GltfConfig, write_glb
    from dyntet.export.validate import ValidatorUnavailable, ensure_validator, missing_tools, validate_glb

    reason = missing_tools()
    if reason:
        pytest.skip(f"Khronos glTF Validator cannot run: {reason}")
    try:
        ensure_validator()
    except ValidatorUnavailable as exc:
        pytest.fail(f"could not install the glTF validator: {exc}")
    report = write_glb(tmp_path / "head.glb", own_sequence, GltfConfig(rig="per-frame"))
    result = validate_glb(report.path)
    assert result.num_errors == 0, result.summary()
    assert result.raw["info"]["hasTextures"] and result.raw["info"]["hasMorphTargets"]


def _probe(path: Path) -> str:
    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True).stderr


def test_render_writes_h264_with_the_drivers_audio(run, loaded, geometry, tmp_path):
    from dyntet.generate.api import clip_windows, resolve_clip
    from dyntet.generate.video import render_frames, to_linear

    out = tmp_path / "avatar.mp4"
    options = DriveOptions(frames=FrameRange.parse("0:12"))
    render_video(run, out, RenderConfig(drive="all", drive_options=options, size=64, quality=10))
    info = _probe(out)
    assert "Video: h264" in info and "64x64" in info and "Audio: aac" in info, info
    frames = list(imageio_ffmpeg.read_frames(str(out)))
    assert frames[0]["size"] == (64, 64)
    decoded = [np.frombuffer(f, np.uint8).reshape(64, 64, 3) for f in frames[1:]]
    assert len(decoded) == 12
    # The video shows the neural rendering (upright, composited): compare frame 5 with a direct render.
    clip = resolve_clip(loaded, "all", options, out)
    pose = clip.scene_to_camera @ clip.head_to_scene[5].astype(np.float64)
    intrinsics = torch.from_numpy(clip.intrinsics * (64 / clip.size))
    with torch.inference_mode():
        loaded.model.light.build()
    direct = render_frames(loaded.model, geometry, clip_windows(loaded, clip)[5:6],
                           torch.from_numpy(pose.astype(np.float32))[None], intrinsics, 64,
                           to_linear(loaded.dataset.background(), 64, torch.device("cpu"))[None])[0]
    mse = np.mean((decoded[5].astype(np.float64) - direct) ** 2) / 255.0 ** 2
    assert 10 * math.log10(1 / mse) > 28, "the encoded frame should match the rendering"


@pytest.mark.parametrize("args, message", [
    (["--drive", "nonsense"], "neither a split"),
    (["--drive", "test", "--frames", "9:3"], "greater than START"),
    (["--drive", "all", "--frames", "0:999"], "has 40 frames"),
    (["--drive", "test", "--pose", "target", "--pose-cutoff-hz", "nan"], "finite"),
])
def test_cli_explains_bad_inputs(run, tmp_path, capsys, args, message):
    code = main(["generate", str(run), "-o", str(tmp_path / "seq"), "--quiet", *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "seq").exists()


def test_cli_explains_missing_runs_and_refuses_foreign_outputs(run, tmp_path, capsys):
    assert main(["generate", str(tmp_path / "nope"), "--drive", "test", "-o", str(tmp_path / "s")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    assert main(["generate", str(tmp_path / "half"), "--drive", "test", "-o", str(tmp_path / "s")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "keep.jpg").write_bytes(b"x")
    assert main(["generate", str(run), "--drive", "test", "-o", str(foreign), "--quiet"]) == 2
    assert "not a sequence folder" in capsys.readouterr().err
    assert (foreign / "keep.jpg").exists()
    assert main(["render", str(run), "--drive", "test", "-o", str(tmp_path / "v.mp4"), "--size", "63"]) == 2
    assert "even" in capsys.readouterr().err


def test_cli_generate_and_render_succeed(run, tmp_path, capsys):
    seq = tmp_path / "seq"
    assert main(["generate", str(run), "--drive", "test", "-o", str(seq), "--texture-size", "64",
                 "--environment-height", "8", "--quiet"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert read_sequence(seq).num_frames == len(Dataset.open(read_sequence(seq).source["driver_dataset"]).split("test"))
    video = tmp_path / "test.mp4"
    assert main(["render", str(run), "--drive", "test", "-o", str(video), "--background", "footage", "--quiet"]) == 0
    assert video.stat().st_size > 0


def test_api_refuses_footage_background_for_another_person(run, other_subject, tmp_path):
    with pytest.raises(GenerateError, match="own clip"):
        render_video(run, tmp_path / "x.mp4", RenderConfig(drive=str(other_subject), background="footage"))
