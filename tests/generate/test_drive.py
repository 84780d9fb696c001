"""Driving sources, frame ranges, head-pose conventions and audio cuts."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from generate_helpers import AUDIO_RATE, FPS, NUM_FRAMES, audio_ramp
from dyntet.formats.dataset import Dataset
from dyntet.generate.drive import DriveError, DriveOptions, DriveSource, FrameRange, driving_clip
from dyntet.generate.pose import head_to_scene, mean_pose, ping_pong, rigid_inverse, smooth


def test_drive_source_parsing(tmp_path: Path, subject: Path, monkeypatch):
    assert DriveSource.parse("test") == DriveSource("split", split="test")
    assert DriveSource.parse(str(subject)).kind == "dataset"
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    assert DriveSource.parse(video) == DriveSource("video", path=video)
    (tmp_path / "test").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DriveError, match="not a dataset"):       # a Path is a path, even one named "test"
        DriveSource.parse(Path("test"))
    assert DriveSource.parse("test").kind == "split"
    with pytest.raises(DriveError, match="neither a split"):
        DriveSource.parse(tmp_path / "missing.mp4")
    with pytest.raises(DriveError, match="not a dataset"):
        DriveSource.parse(tmp_path)
    with pytest.raises(DriveError, match="empty"):
        DriveSource.parse("  ")


@pytest.mark.parametrize("text, start, stop", [(None, 0, None), ("", 0, None), (":", 0, None), ("3:9", 3, 9),
                                               ("5:", 5, None), (":7", 0, 7)])
def test_frame_range_parsing(text, start, stop):
    parsed = FrameRange.parse(text)
    assert (parsed.start, parsed.stop) == (start, stop)


@pytest.mark.parametrize("text, message", [("a:b", "whole numbers"), ("9:3", "greater than START"),
                                           ("-2:4", "negative"), ("1:2:3", "START:STOP"), ("4", "START:STOP")])
def test_bad_frame_ranges_are_explained(text, message):
    with pytest.raises(DriveError, match=message):
        FrameRange.parse(text)


def test_frame_range_outside_the_clip_is_explained():
    assert FrameRange.parse("2:5").select(10, "x") == range(2, 5)
    assert FrameRange.parse("2:").select(10, "x") == range(2, 10)
    with pytest.raises(DriveError, match="has 10 frames"):
        FrameRange.parse("5:11").select(10, "x")
    with pytest.raises(DriveError, match="has 10 frames"):
        FrameRange.parse("10:").select(10, "x")


def test_rigid_helpers():
    rng = np.random.default_rng(0)
    from scipy.spatial.transform import Rotation

    poses = np.tile(np.eye(4), (6, 1, 1))
    poses[:, :3, :3] = Rotation.from_rotvec(rng.normal(scale=0.1, size=(6, 3))).as_matrix()
    poses[:, :3, 3] = rng.normal(size=(6, 3))
    np.testing.assert_allclose(rigid_inverse(poses) @ poses, np.tile(np.eye(4), (6, 1, 1)), atol=1e-12)
    reference = mean_pose(poses)
    scene = head_to_scene(poses, reference)
    np.testing.assert_allclose(reference[None] @ scene, poses, atol=1e-6)
    np.testing.assert_allclose(mean_pose(scene.astype(np.float64)), np.eye(4), atol=1e-6)
    assert ping_pong(9, 4).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert ping_pong(3, 1).tolist() == [0, 0, 0]
    np.testing.assert_array_equal(smooth(poses, 25.0, 0.0), poses)


def test_own_split_reproduces_the_footage_poses(subject: Path):
    dataset = Dataset.open(subject)
    clip = driving_clip(dataset, dataset.tracking.expression.mean(0), DriveSource.parse("test"),
                        DriveOptions(pose_cutoff_hz=0.0))
    test = dataset.split("test")
    np.testing.assert_array_equal(clip.frames, np.arange(test.start, test.stop))
    np.testing.assert_array_equal(clip.expression, dataset.tracking.expression)
    posed = clip.scene_to_camera[None] @ clip.head_to_scene.astype(np.float64)
    np.testing.assert_allclose(posed, dataset.tracking.pose[test.start:test.stop], atol=2e-6)
    assert clip.source["retarget"] is None and clip.fps == FPS


def test_audio_is_cut_to_the_chosen_frames(subject: Path):
    dataset = Dataset.open(subject)
    clip = driving_clip(dataset, dataset.tracking.expression.mean(0), DriveSource.parse("all"),
                        DriveOptions(frames=FrameRange.parse("10:30")))
    assert clip.num_frames == 20
    with wave.open(io.BytesIO(clip.audio), "rb") as cut:
        assert cut.getframerate() == AUDIO_RATE and cut.getnchannels() == 1
        samples = np.frombuffer(cut.readframes(cut.getnframes()), "<i2")
    start = int(round(10 / FPS * AUDIO_RATE))
    expected = audio_ramp(int(NUM_FRAMES / FPS * AUDIO_RATE) + 1)[start:start + int(round(20 / FPS * AUDIO_RATE))]
    np.testing.assert_array_equal(samples, expected)


def test_target_pose_borrows_the_avatars_motion(subject: Path, other_subject: Path):
    target = Dataset.open(subject)
    clip = driving_clip(target, target.tracking.expression.mean(0), DriveSource.parse(str(other_subject)),
                        DriveOptions(pose="target", pose_cutoff_hz=0.0, frames=FrameRange.parse("0:12")))
    posed = clip.scene_to_camera[None] @ clip.head_to_scene.astype(np.float64)
    np.testing.assert_allclose(posed, target.tracking.pose[:12], atol=2e-6)   # same fps: frame for frame
    assert clip.source["retarget"]["correspondence"] == "surface"
    assert clip.expression.shape == (NUM_FRAMES, target.face_model.num_expression)


def test_driver_pose_is_placed_at_the_avatars_mean_pose(subject: Path, other_subject: Path):
    target, driver = Dataset.open(subject), Dataset.open(other_subject)
    clip = driving_clip(target, target.tracking.expression.mean(0), DriveSource.parse(str(other_subject)),
                        DriveOptions(pose_cutoff_hz=0.0))
    np.testing.assert_allclose(clip.scene_to_camera, mean_pose(target.tracking.pose), atol=1e-9)
    expected = head_to_scene(driver.tracking.pose, mean_pose(driver.tracking.pose))
    np.testing.assert_allclose(clip.head_to_scene, expected, atol=1e-6)
    assert clip.audio is None, "the driver has no audio.wav"


def test_unreadable_video_gives_a_clear_error(tmp_path: Path, subject: Path):
    dataset = Dataset.open(subject)
    video = tmp_path / "notes.mp4"
    video.write_text("hello")
    with pytest.raises(DriveError, match="could not preprocess the driving video"):
        driving_clip(dataset, dataset.tracking.expression.mean(0), DriveSource.parse(video), DriveOptions(),
                     output=tmp_path / "seq")
