"""Helpers of the audio tests: speech-like recordings with a known mouth, a face model, WAV writers."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from dyntet.audio.decode import SAMPLE_RATE
from dyntet.formats.dataset import FaceModel

FPS = 25.0


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE, channels: int = 1, width: int = 2) -> Path:
    """Float samples [S] (or [S, C]) in [-1, 1] as a PCM WAV of the given layout."""
    data = np.asarray(samples, np.float64)
    data = data.reshape(len(data), -1 if data.size else 1)
    data = np.repeat(data, channels, axis=1) if data.shape[1] == 1 else data
    if width == 1:
        pcm = (np.clip(data, -1, 1) * 127 + 128).round().astype(np.uint8)
    else:
        pcm = (np.clip(data, -1, 1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def face_model(num_expression: int = 4) -> FaceModel:
    """478 MediaPipe-numbered points; coefficient 0 opens the mouth (lower inner lip, point 14, drops 1 cm)."""
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 0.05, (478, 3)).astype(np.float32)
    mean[13], mean[14] = (0.0, -0.03, 0.1), (0.0, -0.031, 0.1)
    basis = rng.normal(0, 1e-4, (num_expression, 478, 3)).astype(np.float32)
    basis[0, 14] = (0.0, -0.01, 0.0)
    basis[0, [17, 84, 87, 178]] = (0.0, -0.01, 0.0)
    return FaceModel(mean, basis, np.zeros((0, 3), np.int32))


def talking(seconds: float, seed: int, pitch_hz: float = 120.0) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like audio and its mouth opening per 25 fps frame.

    Syllables of 120–300 ms: a voiced buzz at ``pitch_hz`` through a vowel-like resonance, loud while the
    mouth is open, separated by short closures and a few pauses; the mouth opening (α₀) rises ~40 ms
    before the sound, as real lips do.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    opening = np.zeros(n)
    t = 0.0
    while t < seconds:
        if rng.random() < 0.15:
            t += rng.uniform(0.3, 0.6)  # a pause
            continue
        length = rng.uniform(0.12, 0.3)
        a, b = int(t * SAMPLE_RATE), min(n, int((t + length) * SAMPLE_RATE))
        opening[a:b] = rng.uniform(0.4, 1.0) * np.sin(np.linspace(0, np.pi, b - a)) if b > a else 0
        t += length + rng.uniform(0.03, 0.08)
    lead = int(0.04 * SAMPLE_RATE)
    loudness = np.concatenate([np.zeros(lead), opening[:-lead]])
    time = np.arange(n) / SAMPLE_RATE
    buzz = np.sign(np.sin(2 * np.pi * pitch_hz * time)) * 0.5 + rng.normal(0, 0.1, n)
    from scipy.signal import lfilter

    vowel = lfilter([1.0], [1.0, -1.3, 0.8], buzz)
    audio = 0.3 * loudness * vowel / np.abs(vowel).max() + rng.normal(0, 1e-4, n)
    frames = int(seconds * FPS)
    centres = ((np.arange(frames) + 0.5) / FPS * SAMPLE_RATE).astype(int)
    return audio.astype(np.float32), opening[np.minimum(centres, n - 1)]
