"""Video and audio decoding through the bundled ffmpeg (clips are generated in tmp_path)."""

from __future__ import annotations

import io
import subprocess
import wave

import numpy as np
import pytest
from face_clips import rotate_metadata, write_video

from dyntet_formats.wav import wav_bytes
from dyntet.data.video import VideoError, ffmpeg_exe, probe, read_audio, read_frame_at, read_frames


def numbered_frames(count, size=(64, 48)):
    """Grey frames whose level encodes their number (8 levels apart, robust to compression)."""
    w, h = size
    return [np.full((h, w, 3), 8 * i + 4, np.uint8) for i in range(count)]


def frame_numbers(frames):
    return [int(round((f.mean() - 4) / 8)) for f in frames]


def test_probe_and_constant_rate_decoding(tmp_path):
    path = write_video(tmp_path / "ten.mp4", numbered_frames(20), fps=10, audio=True)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.rotation) == (64, 48, 10.0, 0)
    assert info.video_codec == "h264" and info.has_audio and info.duration_s == pytest.approx(2.0, abs=0.1)
    assert frame_numbers(read_frames(info, 10)) == list(range(20))
    assert frame_numbers(read_frames(info, 20)) == [i // 2 for i in range(40)]      # each frame twice
    assert frame_numbers(read_frames(info, 5)) == list(range(0, 20, 2))
    assert frame_numbers(read_frames(info, 10, max_seconds=1.0)) == list(range(10))
    assert frame_numbers(read_frames(info, 10, start=15)) == list(range(15, 20))
    assert info.frame_count_estimate(25) == 50 and info.frame_count_estimate(25, max_seconds=1) == 25


def test_variable_frame_rate_is_resampled_by_time(tmp_path):
    frames = numbered_frames(30)
    # Frames 0–9 shown at 10 fps, then 10–29 at 30 fps: 1 s + 2/3 s.
    path = tmp_path / "vfr.mkv"
    cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48",
           "-r", "30", "-i", "-", "-vf", "setpts='if(lt(N,10),N/10,1+(N-10)/30)/TB'", "-fps_mode", "vfr",
           "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True, capture_output=True)
    numbers = frame_numbers(read_frames(probe(path), 30))
    assert 49 <= len(numbers) <= 51
    assert numbers[15] in (4, 5)              # t = 0.5 s: the 10-fps part
    assert numbers[36] in (15, 16, 17)        # t = 1.2 s: 10 + 6 in the 30-fps part
    assert numbers == sorted(numbers)


def test_rotation_metadata_gives_upright_frames(tmp_path):
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:16, :16] = (255, 0, 0)             # red block top-left in the stored (landscape) frame
    stored = write_video(tmp_path / "stored.mp4", [frame] * 5, fps=25)
    rotated = rotate_metadata(stored, tmp_path / "rotated.mp4", 90)
    info = probe(rotated)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (48, 64)                # portrait on display
    decoded = next(iter(read_frames(info, 25)))
    assert decoded.shape == (64, 48, 3)
    expected = np.rot90(frame, 1 if info.rotation == 90 else -1)   # display rotation is anticlockwise
    assert np.abs(decoded.astype(int) - expected).mean() < 12


def test_mpeg_program_stream_with_mp2_audio(tmp_path):
    path = write_video(tmp_path / "clip.mpg", numbered_frames(25, size=(64, 48)), fps=25, audio=True,
                       codec="mpeg1video", container=["-f", "mpeg"])
    info = probe(path)
    assert info.container == "mpeg" and info.video_codec == "mpeg1video" and info.audio_codec == "mp2"
    numbers = frame_numbers(read_frames(info, 25))
    # Frames follow the stream's timestamps: the MPEG-PS muxer may leave a one-frame hole, which the
    # constant-rate resampling fills by repeating the previous frame.
    assert sorted(set(numbers)) == list(range(25)) and numbers == sorted(numbers) and len(numbers) <= 26
    audio = read_audio(info)
    assert audio.dtype == np.int16 and abs(audio.size - 16000) < 1600


def test_audio_is_16k_mono_and_wav_round_trips(tmp_path):
    info = probe(write_video(tmp_path / "a.mp4", numbered_frames(25), fps=25, audio=True))
    samples = read_audio(info)
    assert abs(samples.size - 16000) < 800
    # A 440 Hz tone: the spectrum peaks there.
    spectrum = np.abs(np.fft.rfft(samples[2000:14000].astype(float)))
    assert np.fft.rfftfreq(12000, 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=5)
    with wave.open(io.BytesIO(wav_bytes(samples)), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert wav.getnframes() == samples.size
    with pytest.raises(ValueError):
        wav_bytes(samples.astype(np.int32))


def test_no_audio(tmp_path):
    info = probe(write_video(tmp_path / "silent.mp4", numbered_frames(5), fps=25))
    assert not info.has_audio and read_audio(info) is None


def test_crop_scale_and_seek(tmp_path):
    frames = [np.zeros((48, 64, 3), np.uint8) for _ in range(10)]
    for i, f in enumerate(frames):
        f[:, 32:] = 200
        f[:] += np.uint8(4 * i)
    info = probe(write_video(tmp_path / "c.mp4", frames, fps=10))
    crop = next(iter(read_frames(info, 10, crop=(32, 0, 32, 48), size=(16, 24))))
    assert crop.shape == (24, 16, 3) and crop.mean() > 180
    with pytest.raises(ValueError, match="inside"):
        next(iter(read_frames(info, 10, crop=(40, 0, 32, 48))))
    at = read_frame_at(info, 0.55)
    assert at.shape == (48, 64, 3) and at[:, :32].mean() == pytest.approx(4 * 5, abs=6)
    assert read_frame_at(info, 0.0, max_side=32).shape == (24, 32, 3)
    assert read_frame_at(info, 60.0) is None


@pytest.mark.parametrize("make, words", [
    (lambda p: p, "does not exist"),
    (lambda p: (p.mkdir(), p)[1], "is a folder"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty (0 bytes)"),
    (lambda p: (p.write_text("hello, not a video\n"), p)[1], "cannot read"),
])
def test_unusable_files_give_clear_errors(tmp_path, make, words):
    path = make(tmp_path / "input.mp4")
    with pytest.raises(VideoError, match=words.replace("(", r"\(").replace(")", r"\)")):
        probe(path)


def test_audio_only_and_still_image_are_not_videos(tmp_path):
    wav = tmp_path / "speech.wav"
    wav.write_bytes(wav_bytes(np.zeros(1600, np.int16)))
    with pytest.raises(VideoError, match="no video stream"):
        probe(wav)
    from PIL import Image

    png = tmp_path / "photo.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(png)
    with pytest.raises(VideoError, match="still image"):
        probe(png)


def test_truncated_file_is_reported(tmp_path):
    good = write_video(tmp_path / "good.mp4", numbered_frames(10), fps=10)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(good.read_bytes()[:600])
    with pytest.raises(VideoError):
        probe(broken)


def test_odd_crops_are_exact(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(6)]
    info = probe(write_video(tmp_path / "noise.mp4", frames, fps=10))
    full = list(read_frames(info, 10))
    cropped = list(read_frames(info, 10, crop=(5, 3, 33, 31)))
    assert len(cropped) == len(full) == 6
    for a, b in zip(cropped, full):
        np.testing.assert_array_equal(a, b[3:34, 5:38])
