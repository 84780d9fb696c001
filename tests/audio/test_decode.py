"""Decoding: every audio file a user may hand us becomes 16 kHz mono floats, or a sentence saying why not."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from audio_helpers import write_wav
from dyntet.audio.decode import SAMPLE_RATE, AudioError, load_speech


def _tone(seconds: float, rate: int, hz: float = 440.0) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)


def _peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[spectrum.argmax()])


def test_pcm16_at_16k_is_read_exactly(tmp_path):
    tone = _tone(0.5, SAMPLE_RATE)
    speech = load_speech(write_wav(tmp_path / "a.wav", tone))
    assert speech.notes == []
    assert len(speech.samples) == len(tone)
    assert np.abs(speech.samples - tone).max() < 1e-4


def test_wrong_rate_is_resampled_and_said(tmp_path):
    speech = load_speech(write_wav(tmp_path / "a.wav", _tone(1.0, 44100), rate=44100))
    assert any("44100 Hz" in note and "resampled" in note for note in speech.notes)
    assert len(speech.samples) == SAMPLE_RATE
    assert _peak_hz(speech.samples) == pytest.approx(440.0, abs=2.0)


def test_stereo_is_mixed_down_and_said(tmp_path):
    left, right = _tone(0.5, SAMPLE_RATE, 440.0), _tone(0.5, SAMPLE_RATE, 1000.0)
    speech = load_speech(write_wav(tmp_path / "a.wav", np.stack([left, right], 1), channels=2))
    assert any("2 channels" in note and "mono" in note for note in speech.notes)
    assert np.abs(speech.samples - (left + right) / 2).max() < 1e-3


def test_8_bit_is_converted_and_said(tmp_path):
    tone = _tone(0.5, SAMPLE_RATE)
    speech = load_speech(write_wav(tmp_path / "a.wav", tone, width=1))
    assert any("8-bit" in note for note in speech.notes)
    assert np.abs(speech.samples - tone).max() < 0.02  # 8-bit steps are 1/128


@pytest.mark.parametrize("content, expected", [
    (b"", "empty"),
    (b"this is a text file, not a recording\n" * 20, "not an audio file"),
])
def test_empty_or_not_audio_is_refused_with_a_reason(tmp_path, content, expected):
    path = tmp_path / "speech.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=expected) as info:
        load_speech(path)
    assert str(path) in str(info.value)


def test_wav_without_samples_is_empty(tmp_path):
    with pytest.raises(AudioError, match="empty"):
        load_speech(write_wav(tmp_path / "silent.wav", np.zeros(0)))


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such audio file"):
        load_speech(tmp_path / "nope.wav")


def test_compressed_formats_go_through_ffmpeg(tmp_path):
    from dyntet.data.video import ffmpeg_exe

    wav = write_wav(tmp_path / "a.wav", _tone(1.0, 22050, 500.0), rate=22050)
    for suffix in (".flac", ".mp3"):
        out = tmp_path / f"a{suffix}"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), str(out)], check=True)
        speech = load_speech(out)
        assert speech.seconds == pytest.approx(1.0, abs=0.06)
        assert _peak_hz(speech.samples) == pytest.approx(500.0, abs=3.0)


def test_video_without_sound_says_so(tmp_path):
    import imageio_ffmpeg

    video = tmp_path / "silent.mp4"
    writer = imageio_ffmpeg.write_frames(str(video), (32, 32), fps=10, macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for _ in range(5):
        writer.send(np.zeros((32, 32, 3), np.uint8))
    writer.close()
    with pytest.raises(AudioError, match="no audio track"):
        load_speech(video)
