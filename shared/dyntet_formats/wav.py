"""PCM WAV: the audio inside dataset and sequence folders (16-bit mono, aligned with frame 0)."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dyntet_formats.errors import FormatError


class WavFormatError(FormatError):
    """An audio file is not a readable PCM WAV file."""


@dataclass(frozen=True)
class WavInfo:
    sample_rate: int
    channels: int
    sample_width: int
    """Bytes per sample (2 for PCM16)."""
    num_samples: int

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate


SAMPLE_RATE = 16000
"""The rate of every WAV our folders hold."""


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """PCM16 mono WAV bytes from mono samples [N]: int16 as they are, floats in [-1, 1] (clipped).

    Other dtypes (int32, uint8 …) are refused: their scale is ambiguous.
    """
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"samples must be mono [N], got shape {samples.shape}")
    if not (isinstance(sample_rate, int) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    if samples.dtype == np.int16:
        pcm = samples.astype("<i2")
    elif np.issubdtype(samples.dtype, np.floating):
        pcm = (np.clip(np.nan_to_num(samples.astype(np.float64)), -1.0, 1.0) * 32767.0).round().astype("<i2")
    else:
        raise ValueError(f"samples must be int16 or float in [-1, 1], got {samples.dtype}")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


def describe_wav(path: str | Path) -> WavInfo:
    """Header of a PCM WAV file, or :class:`WavFormatError` naming the file."""
    try:
        with wave.open(str(path), "rb") as w:
            info = WavInfo(w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
    except (wave.Error, EOFError, OSError) as exc:
        raise WavFormatError(f"{path}: not a readable PCM WAV file ({exc}); re-encode it as 16-bit PCM WAV") from None
    if info.sample_rate <= 0 or info.channels <= 0:
        raise WavFormatError(f"{path}: WAV header has rate {info.sample_rate} and {info.channels} channels")
    return info
