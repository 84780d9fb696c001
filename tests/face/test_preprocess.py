"""End to end: a generated clip of the astronaut through ``preprocess`` into a dataset folder, and
every kind of bad input the issue lists, each with its clear message or documented behaviour."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest
from face_clips import face_patch, place, rotate_metadata, sway, write_video

from dyntet.formats.dataset import MASK_BACKGROUND, MASK_HEAD, MASK_TORSO, Dataset
from dyntet_formats.wav import wav_bytes
from dyntet.face.preprocess import PreprocessError, PreprocessOptions, preprocess
from dyntet.progress import Cancelled

SMALL = dict(size=128, min_frames=10)


@pytest.fixture(scope="module")
def dataset(face_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "dataset"
    reports = []
    preprocess(face_clip, out, PreprocessOptions(**SMALL), progress=reports.append)
    return out, reports


def test_dataset_is_complete_and_consistent(dataset):
    out, reports = dataset
    data = Dataset.open(out)
    assert data.num_frames == 24 and data.size == 128 and data.fps == 25.0
    assert list(data.split("test")) == [22, 23]                       # the last 1/11
    tracking = data.tracking
    assert tracking.frame_index.tolist() == list(range(24))
    assert tracking.landmarks.shape == (24, 478, 2)
    fx, fy, cx, cy = tracking.intrinsics
    assert fx == fy > 0 and 0 < cx < 128 * 4 and 0 < cy < 128 * 4
    # Poses put the head in front of the camera, facing it.
    assert (tracking.pose[:, 2, 3] < 0).all()
    assert (tracking.pose[:, 2, 2] > 0.8).all()
    k = data.manifest["num_expression"]
    assert tracking.expression.shape == (24, k) and 1 <= k <= 21
    assert data.face_model.triangles.shape == (898, 3)
    frame, mask = data.frame(0), data.mask(0)
    assert frame.shape == (128, 128, 3) and mask.shape == (128, 128)
    assert set(np.unique(mask)) <= {MASK_BACKGROUND, MASK_TORSO, MASK_HEAD}
    assert (mask == MASK_HEAD).mean() > 0.1 and (mask == MASK_TORSO).mean() > 0.05
    assert data.background().shape == (128, 128, 3)
    assert {r.stage for r in reports} >= {"probe", "locate", "track", "fit", "frames", "background", "audio"}


def test_landmarks_and_model_agree_in_the_crop(dataset):
    out, _ = dataset
    report = json.loads((out / "report.json").read_text())
    assert report["frames"] == {"decoded": 24, "kept": 24, "kept_frac": 1.0, "dropped_no_face": 0}
    assert report["reprojection_px"]["smoothed"]["median"] < 1.5
    assert report["face_model"]["explained_variance"] > 0.9
    assert report["jitter"]["smoothed_deg"]["median"] is not None
    data = Dataset.open(out)
    # Tracked landmarks sit on the head mask.
    for i in (0, 12, 23):
        pts = np.round(data.tracking.landmarks[i, :468]).astype(int).clip(0, 127)
        assert (data.mask(i)[pts[:, 1], pts[:, 0]] == MASK_HEAD).mean() > 0.95
    sheet = out / "contact_sheet.png"
    assert sheet.exists() and sheet.stat().st_size > 10_000


def test_audio_is_aligned_16k_mono(dataset):
    out, _ = dataset
    with wave.open(str(out / "audio.wav"), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (1, 16000, 2)
        assert wav.getnframes() == pytest.approx(24 / 25 * 16000, abs=2)
    assert Dataset.open(out).manifest["has_audio"] is True


def test_cancel_then_resume(face_clip, tmp_path):
    out = tmp_path / "resumed"

    def stop_while_writing_frames():
        return len(list((out / "frames").glob("*.png"))) >= 5

    with pytest.raises(Cancelled):
        preprocess(face_clip, out, PreprocessOptions(**SMALL), should_stop=stop_while_writing_frames)
    assert not (out / "manifest.json").exists()                     # an interrupted run never looks complete
    assert 0 < len(list((out / "frames").glob("*.png"))) < 24
    second = []
    preprocess(face_clip, out, PreprocessOptions(**SMALL), progress=second.append)
    assert Dataset.open(out).num_frames == 24
    stages = {r.stage for r in second}
    assert "track" not in stages and "locate" not in stages          # cached stages are not redone


def test_keep_fps_and_max_seconds(face_clip, tmp_path):
    out = preprocess(face_clip, tmp_path / "keep", PreprocessOptions(size=96, fps="keep", max_seconds=0.8,
                                                                     min_frames=10))
    data = Dataset.open(out)
    assert data.fps == 25.0 and data.num_frames == 20


# --- bad input ------------------------------------------------------------------------------------

def run_error(video, tmp_path, **options):
    with pytest.raises(PreprocessError) as info:
        preprocess(video, tmp_path / "out", PreprocessOptions(**{**SMALL, **options}))
    assert not (tmp_path / "out" / "manifest.json").exists()
    return str(info.value)


def test_missing_file(tmp_path):
    assert "does not exist" in run_error(tmp_path / "nope.mp4", tmp_path)


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are my notes, not a video\n")
    assert "cannot read" in run_error(path, tmp_path)


def test_zero_length(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert "empty (0 bytes)" in run_error(path, tmp_path)


def test_no_video_stream(tmp_path):
    path = tmp_path / "voice.wav"
    path.write_bytes(wav_bytes(np.zeros(16000, np.int16)))
    assert "no video stream" in run_error(path, tmp_path)


def test_no_face(tmp_path):
    rng = np.random.default_rng(0)
    frames = [cv_noise for cv_noise in (rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(12))]
    message = run_error(write_video(tmp_path / "noise.mp4", frames), tmp_path)
    assert "no face found" in message


def test_tiny_face(astronaut, tmp_path):
    frame = place((640, 480), [(face_patch(astronaut, 60), (300, 200))])
    message = run_error(write_video(tmp_path / "far.mp4", [frame] * 12), tmp_path)
    assert "only about" in message and "100 px" in message


def test_too_few_frames(face_clip, tmp_path):
    message = run_error(face_clip, tmp_path, min_frames=30)
    assert "tracked in only 24 of 24 frames" in message


def test_output_folder_with_other_files(face_clip, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(PreprocessError, match="already holds other files"):
        preprocess(face_clip, out, PreprocessOptions(**SMALL))
    assert (out / "holiday.jpg").exists()


def test_several_faces_use_the_largest(astronaut, tmp_path):
    big, small = face_patch(astronaut, 150), face_patch(astronaut, 105)
    frame = place((704, 400), [(big, (0, 0)), (small, (430, 60))])
    out = preprocess(write_video(tmp_path / "two.mp4", sway(frame, 12)), tmp_path / "two",
                     PreprocessOptions(**SMALL))
    report = json.loads((out / "report.json").read_text())
    assert report["faces"]["max_per_frame"] >= 2
    assert any("faces appear" in w for w in report["warnings"])
    assert report["crop"]["x"] + report["crop"]["side"] / 2 < 352     # the crop is on the big face (left)


def test_very_large_frames(astronaut, tmp_path):
    frame = place((3840, 2160), [(face_patch(astronaut, 220), (2400, 900))])
    out = preprocess(write_video(tmp_path / "uhd.mp4", sway(frame, 12, amplitude_px=8)), tmp_path / "uhd",
                     PreprocessOptions(**SMALL))
    report = json.loads((out / "report.json").read_text())
    x, y, w, h = report["faces"]["tracking_region"]
    assert w < 3840 and x > 1000                                         # tracked in a region around the face
    assert report["frames"]["kept"] == 12
    crop = report["crop"]
    assert 2400 < crop["x"] + crop["side"] / 2 < 2400 + 600


def test_portrait_and_rotation_metadata(astronaut, tmp_path):
    upright = place((360, 640), [(face_patch(astronaut, 150), (0, 120))])
    portrait = write_video(tmp_path / "portrait.mp4", sway(upright, 12))
    out = preprocess(portrait, tmp_path / "portrait_ds", PreprocessOptions(**SMALL))
    assert Dataset.open(out).num_frames == 12
    # The same picture stored sideways with rotation metadata, as phones record portrait video.
    sideways = [np.ascontiguousarray(np.rot90(f, -1)) for f in sway(upright, 12)]
    stored = write_video(tmp_path / "stored.mp4", sideways)
    rotated = rotate_metadata(stored, tmp_path / "rotated.mp4", 90)
    out = preprocess(rotated, tmp_path / "rotated_ds", PreprocessOptions(**SMALL))
    report = json.loads((out / "report.json").read_text())
    assert report["video"]["rotation"] in (90, 270) and report["video"]["height"] == 640
    assert report["frames"]["kept"] == 12


def test_non_ascii_path_and_no_audio(astronaut, tmp_path):
    frame = place((400, 400), [(face_patch(astronaut, 150), (6, 0))])
    video = write_video(tmp_path / "vidéo ビデオ" / "клип 1.mp4", sway(frame, 12))
    out = preprocess(video, tmp_path / "données" / "jeu", PreprocessOptions(**SMALL))
    data = Dataset.open(out)
    assert data.num_frames == 12
    assert data.manifest["has_audio"] is False and data.audio_path is None
    assert "клип 1.mp4" in data.manifest["source"]["video"]
    report = json.loads((out / "report.json").read_text())
    assert report["audio"] is None
    assert any("no audio" in w and "--audio" in w for w in report["warnings"])  # voice driving unavailable


def test_a_separate_sound_file_is_attached(astronaut, tmp_path):
    frame = place((400, 400), [(face_patch(astronaut, 150), (6, 0))])
    video = write_video(tmp_path / "silent.mp4", sway(frame, 12))  # 12 frames at 25 fps: 0.48 s
    rate = 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate) * 32767).astype("<i2")
    with wave.open(str(tmp_path / "take.wav"), "wb") as sound:
        sound.setnchannels(2)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(np.repeat(tone[:, None], 2, axis=1).tobytes())
    out = preprocess(video, tmp_path / "ds", PreprocessOptions(**SMALL), audio=tmp_path / "take.wav")
    data = Dataset.open(out)
    with wave.open(str(data.audio_path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getnframes()) == (16000, 1, 7680)  # 0.48 s
    report = json.loads((out / "report.json").read_text())
    assert report["audio"]["source"].endswith("take.wav")
    assert any("resampled" in note for note in report["audio"]["notes"])
    assert not any("no audio" in w for w in report["warnings"])
    with pytest.raises(PreprocessError, match="no such file"):
        preprocess(video, tmp_path / "ds2", PreprocessOptions(**SMALL), audio=tmp_path / "missing.wav")


def test_options_are_validated():
    with pytest.raises(ValueError, match="size"):
        PreprocessOptions(size=10)
    with pytest.raises(ValueError, match="fps"):
        PreprocessOptions(fps="fast")
    with pytest.raises(ValueError, match="max_seconds"):
        PreprocessOptions(max_seconds=0)
    assert PreprocessOptions(num_expression=8).face_model.num_expression == 8
