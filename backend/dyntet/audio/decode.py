"""Any audio file → 16 kHz mono float samples, with a note for every conversion made on the way.

PCM WAV is read with :mod:`wave` (no subprocess, exact); everything else — FLAC, MP3, M4A/AAC, OGG, a
video's audio track — through the ffmpeg binary that imageio-ffmpeg ships. A WAV in another rate,
channel count or sample width is converted, not refused: the notes say what happened so the CLI and
the add-on can tell the user (8-bit audio, for one, is usable but coarse).
"""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
"""The rate every feature is computed at (speech carries little above 8 kHz)."""
MIN_SECONDS = 0.1
AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wma", ".aif",
                  ".aiff", ".caf")
"""Files a drive source treats as speech (a video's sound track is asked for explicitly)."""


class AudioError(ValueError):
    """The file cannot be used as speech; the message names the file and what to do."""


@dataclass
class Speech:
    """Decoded speech: float32 [S] mono samples in [-1, 1] at :data:`SAMPLE_RATE`."""

    samples: np.ndarray
    source: Path
    notes: list[str] = field(default_factory=list)
    """Conversions made (rate, channels, sample width), each a sentence for the user."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def load_speech(path: str | Path) -> Speech:
    """Decode ``path`` to :class:`Speech`.

    Raises:
        AudioError: missing file, not audio, no audio stream, or shorter than 0.1 s.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes); record or export the speech again")
    with path.open("rb") as handle:
        head = handle.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        speech = _read_wav(path)
    else:
        speech = _read_with_ffmpeg(path)
    if speech.seconds < MIN_SECONDS:
        raise AudioError(f"{path}: the audio is empty ({len(speech.samples)} samples, {speech.seconds:.3f} s); "
                         "it needs at least a fraction of a second of speech")
    return speech


def _read_wav(path: Path) -> Speech:
    try:
        with wave.open(str(path), "rb") as src:
            rate, width, channels = src.getframerate(), src.getsampwidth(), src.getnchannels()
            data = src.readframes(src.getnframes())
    except (wave.Error, EOFError) as exc:
        # WAVE_FORMAT_EXTENSIBLE or float WAVs that `wave` refuses: ffmpeg reads them
        try:
            return _read_with_ffmpeg(path)
        except AudioError:
            raise AudioError(f"{path}: not a readable WAV file ({exc}); re-export it as 16-bit PCM WAV") from None
    if rate <= 0 or channels <= 0:
        raise AudioError(f"{path}: the WAV header says {rate} Hz and {channels} channels; re-export the file")
    notes: list[str] = []
    usable = len(data) // (width * channels) * width * channels
    if width == 1:  # 8-bit WAV is unsigned
        samples = (np.frombuffer(data[:usable], np.uint8).astype(np.float32) - 128.0) / 128.0
        notes.append("8-bit audio: converted to 16-bit; its coarse quantisation makes lip-sync less precise — "
                     "use 16-bit audio when you have it")
    elif width == 2:
        samples = np.frombuffer(data[:usable], "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        raw = np.frombuffer(data[:usable], np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        samples = (np.where(value >= 1 << 23, value - (1 << 24), value) / float(1 << 23)).astype(np.float32)
    elif width == 4:
        samples = (np.frombuffer(data[:usable], "<i4").astype(np.float64) / 2.0 ** 31).astype(np.float32)
    else:
        raise AudioError(f"{path}: {8 * width}-bit WAV samples are not supported; re-export as 16-bit PCM WAV")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(1)
        notes.append(f"{channels} channels: mixed down to mono")
    if rate != SAMPLE_RATE:
        samples = resample(samples, rate)
        notes.append(f"{rate} Hz: resampled to {SAMPLE_RATE} Hz")
    return Speech(np.ascontiguousarray(samples, np.float32), path, notes)


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """float [S] at ``rate`` → :data:`SAMPLE_RATE` (polyphase, anti-aliased)."""
    from scipy.signal import resample_poly

    if rate == SAMPLE_RATE:
        return samples
    common = gcd(int(rate), SAMPLE_RATE)
    return resample_poly(samples.astype(np.float64), SAMPLE_RATE // common, int(rate) // common).astype(np.float32)


def _read_with_ffmpeg(path: Path) -> Speech:
    from dyntet.data.video import ffmpeg_exe

    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-vn",
           "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    try:
        result = subprocess.run(cmd, capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise AudioError(f"{path}: decoding took longer than 10 minutes; convert it to a 16 kHz WAV first") from None
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace")
        reason = stderr.strip().splitlines()
        reason_text = reason[0] if reason else f"exit code {result.returncode}"
        if "matches no streams" in stderr or "does not contain any stream" in stderr:
            raise AudioError(f"{path}: the file has no audio track; pass a file with speech in it") from None
        raise AudioError(f"{path}: not an audio file that can be decoded (ffmpeg: {reason_text}); use WAV, FLAC, "
                         "MP3, M4A/AAC, OGG or a video with a sound track") from None
    samples = np.frombuffer(result.stdout[: len(result.stdout) // 4 * 4], "<f4").copy()
    return Speech(np.clip(np.nan_to_num(samples), -1.0, 1.0), path, [])
