"""``dyntet generate --drive speech.wav``: a voice drives the avatar through the run's audio model."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from dyntet.cli import main
from dyntet.formats.sequence import read_sequence

GENERATE_FAST = ["--texture-size", "64", "--environment-height", "16", "--quiet"]


def _speech(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Syllable-like bursts of a buzzing vowel with pauses (float [S])."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t) + rng.normal(0, 0.05, len(t)), 0, None) * (t % 1.0 < 0.7)
    return (0.3 * envelope * np.sign(np.sin(2 * np.pi * 130 * t))).astype(np.float32)


def _write(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(pcm[:, None], channels, axis=1).tobytes())
    return path


def test_training_fits_the_audio_model(run):
    from dyntet.audio.model import AUDIO_MODEL_FILE, AudioModel

    model = AudioModel.load(run / AUDIO_MODEL_FILE)  # the last stage of `dyntet train` (the footage has sound)
    assert model.summary["clips"] and model.summary["frames"] > 0
    assert model.support.shape == (model.summary["frames"], model.features.dim)
    assert model.weights.shape == (model.summary["frames"], model.num_expression)


def test_a_model_of_an_earlier_version_is_fitted_again(run, tmp_path):
    import io

    from dyntet.audio.model import AUDIO_MODEL_FILE, VERSION, AudioModel, OutdatedAudioModel
    from dyntet.audio.run_model import run_audio_model

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    path = copy / AUDIO_MODEL_FILE
    with np.load(path) as data:
        arrays = {k: v for k, v in data.items() if k != "support"}  # version 1 had no support frames
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "version": VERSION - 1}))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(OutdatedAudioModel, match="dyntet audio-fit"):
        AudioModel.load(path)
    refitted = run_audio_model(copy)
    assert AudioModel.load(path).width == refitted.width  # the file was replaced by a current one


def test_speech_drives_a_sequence_with_its_audio(run, tmp_path, capsys):
    speech = _write(tmp_path / "line.wav", _speech(2.0, 44100), 44100, channels=2)
    out = tmp_path / "seq"
    assert main(["generate", str(run), "--drive", str(speech), "-o", str(out), *GENERATE_FAST]) == 0
    printed = capsys.readouterr().out
    assert "44100 Hz: resampled" in printed and "2 channels" in printed  # the user is told what was converted
    seq = read_sequence(out)
    assert seq.num_frames == 50 and seq.fps == pytest.approx(25.0)
    assert seq.source["drive"]["kind"] == "audio"
    with wave.open(str(out / "audio.wav"), "rb") as sound:
        assert sound.getframerate() == 16000 and sound.getnframes() == 32000  # the speech, frame-aligned
    moves = np.linalg.norm(seq.head_pose[:, :3, 3] - seq.head_pose[0, :3, 3], axis=1)
    assert moves.max() > 1e-4, "the head must move as in the avatar's own clip, never frozen"


def test_silence_keeps_the_mesh_still(run, tmp_path):
    silent = _write(tmp_path / "silence.wav", np.zeros(16000 * 2), 16000)
    out = tmp_path / "seq"
    assert main(["generate", str(run), "--drive", str(silent), "-o", str(out), *GENERATE_FAST]) == 0
    vertices = read_sequence(out).vertices
    assert np.abs(vertices - vertices[0]).max() < 1e-6


def test_a_videos_sound_track_drives_with_audio_only(run, tmp_path):
    import imageio_ffmpeg

    speech = _write(tmp_path / "line.wav", _speech(1.6, 16000), 16000)
    video = tmp_path / "clip.mp4"
    writer = imageio_ffmpeg.write_frames(str(video), (32, 32), fps=25, macro_block_size=1, ffmpeg_log_level="error",
                                         audio_path=str(speech), audio_codec="aac")
    writer.send(None)
    for _ in range(40):
        writer.send(np.zeros((32, 32, 3), np.uint8))
    writer.close()
    out = tmp_path / "seq"
    assert main(["generate", str(run), "--drive", str(video), "--audio-only", "-o", str(out), *GENERATE_FAST]) == 0
    seq = read_sequence(out)
    assert seq.source["drive"]["kind"] == "audio" and 38 <= seq.num_frames <= 42
    assert not (tmp_path / "seq.driver").exists()  # the face in the video was never tracked


def test_not_audio_is_explained(run, tmp_path, capsys):
    bogus = tmp_path / "line.wav"
    bogus.write_text("not a recording")
    assert main(["generate", str(run), "--drive", str(bogus), "-o", str(tmp_path / "seq")]) == 2
    assert "not an audio file" in capsys.readouterr().err


def test_a_run_whose_footage_is_silent_says_how_to_attach_audio(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "audio_model.npz").unlink()
    dataset = tmp_path / "dataset"
    shutil.copytree(json.loads((run / "config.json").read_text())["dataset"], dataset)
    (dataset / "audio.wav").unlink()
    config = json.loads((copy / "config.json").read_text())
    config["dataset"] = str(dataset)
    (copy / "config.json").write_text(json.dumps(config))
    speech = _write(tmp_path / "line.wav", _speech(1.0, 16000), 16000)
    assert main(["generate", str(copy), "--drive", str(speech), "-o", str(tmp_path / "seq")]) == 2
    assert "--audio" in capsys.readouterr().err
