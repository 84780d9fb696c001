"""Speaker-normalised log-mel features, sampled at video frame times with temporal context.

Why these: lip shape follows the spectral envelope of the last and next ~100 ms of speech, which a
40-band log-mel filterbank captures with nothing downloaded; cepstral mean/variance normalisation over
the *voiced* frames of each recording removes most of what differs between speakers, microphones and
rooms (so another person's voice drives the avatar); stacking frames ±200 ms gives the regression the
coarticulation context (the mouth moves before the sound starts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dyntet.audio.decode import SAMPLE_RATE


@dataclass(frozen=True)
class FeatureConfig:
    """Filterbank and context layout (stored with the model: features must match what it was fitted on)."""

    window: int = 400
    """Analysis window in samples (25 ms)."""
    hop: int = 160
    """Hop in samples (10 ms: features at 100 Hz)."""
    n_fft: int = 512
    n_mels: int = 40
    fmin_hz: float = 60.0
    fmax_hz: float = 7600.0
    context: tuple[int, ...] = tuple(range(-20, 21, 4))
    """Offsets, in hops, of the stacked frames around each video frame's centre."""
    voiced_margin: float = 4.6
    """Frames whose log energy is within this (nats, ≈ 20 dB) of the loud end count as voiced for CMVN."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["context"] = list(self.context)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        return cls(**{**data, "context": tuple(int(v) for v in data["context"])})

    @property
    def rate_hz(self) -> float:
        return SAMPLE_RATE / self.hop

    @property
    def dim(self) -> int:
        return self.n_mels * len(self.context)


def mel_filterbank(config: FeatureConfig) -> np.ndarray:
    """float32 [n_mels, n_fft // 2 + 1] triangular filters, equally spaced on the mel scale."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(config.fmin_hz), to_mel(config.fmax_hz), config.n_mels + 2))
    bins = np.fft.rfftfreq(config.n_fft, 1.0 / SAMPLE_RATE)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - low) / (centre - low)
    falling = (high - bins[None]) / (high - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


@dataclass
class Spectrum:
    """Per-hop features of one recording: ``mel`` float32 [F, n_mels] log-mel; ``energy`` float32 [F] log
    power (nats); frame ``j`` is centred on sample ``j · hop``."""

    mel: np.ndarray
    energy: np.ndarray


def spectrum(samples: np.ndarray, config: FeatureConfig = FeatureConfig()) -> Spectrum:
    """Log-mel spectrum of float samples [S] at :data:`SAMPLE_RATE`."""
    samples = np.asarray(samples, np.float32)
    half = config.window // 2
    padded = np.pad(samples, (half, half + config.hop))
    count = max(1, (len(padded) - config.window) // config.hop + 1)
    frames = np.lib.stride_tricks.sliding_window_view(padded, config.window)[::config.hop][:count]
    tapered = frames * np.hanning(config.window).astype(np.float32)
    power = np.abs(np.fft.rfft(tapered, n=config.n_fft, axis=1)).astype(np.float32) ** 2
    floor = 1e-10
    mel = np.log(power @ mel_filterbank(config).T + floor)
    energy = np.log(power.sum(1) + floor)
    return Spectrum(mel.astype(np.float32), energy.astype(np.float32))


@dataclass
class VoiceStats:
    """Mean and spread of the log-mel over voiced frames, and how many frames they summarise."""

    mean: np.ndarray   # float [n_mels]
    std: np.ndarray    # float [n_mels]
    frames: int


def voice_stats(spec: Spectrum, config: FeatureConfig = FeatureConfig()) -> VoiceStats:
    """Statistics of the recording's voiced frames (all frames when fewer than 10 are voiced: silence)."""
    voiced = spec.energy >= np.percentile(spec.energy, 95) - config.voiced_margin
    reference = spec.mel[voiced] if voiced.sum() >= 10 else spec.mel
    return VoiceStats(reference.mean(0).astype(np.float64), np.maximum(reference.std(0), 1e-3).astype(np.float64),
                      int(len(reference)))


def normalised(spec: Spectrum, config: FeatureConfig = FeatureConfig(), prior: VoiceStats | None = None,
               prior_frames: float = 500.0) -> np.ndarray:
    """Cepstral mean/variance normalisation of the log-mel: float32 [F, n_mels].

    The statistics are the recording's own voiced frames, shrunk towards ``prior`` (the training voice)
    with the weight of ``prior_frames`` frames: a few seconds of speech are too few to estimate a voice's
    mean spectrum on their own (a 3 s line would shift every feature), a minute is plenty."""
    own = voice_stats(spec, config)
    if prior is None:
        mean, std = own.mean, own.std
    else:
        w = own.frames / (own.frames + prior_frames)
        mean = w * own.mean + (1 - w) * prior.mean
        std = np.sqrt(w * own.std ** 2 + (1 - w) * prior.std ** 2)
    return ((spec.mel - mean) / std).astype(np.float32)


def frame_features(mel: np.ndarray, times_s: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Stacked context features at the given video frame times: float32 [T, n_mels · len(context)].

    ``times_s`` are the frames' centres in seconds from the recording's first sample; taps beyond either
    end repeat the edge frame."""
    centre = np.round(np.asarray(times_s, np.float64) * config.rate_hz).astype(np.int64)
    taps = np.clip(centre[:, None] + np.asarray(config.context, np.int64)[None], 0, len(mel) - 1)
    return mel[taps].reshape(len(centre), -1)


def frame_loudness(spec: Spectrum, times_s: np.ndarray, config: FeatureConfig = FeatureConfig(),
                   half_width_hops: int = 3) -> np.ndarray:
    """Peak log energy (nats) within ±``half_width_hops`` of each video frame time: float32 [T] (the gate's input)."""
    centre = np.round(np.asarray(times_s, np.float64) * config.rate_hz).astype(np.int64)
    offsets = np.arange(-half_width_hops, half_width_hops + 1)
    taps = np.clip(centre[:, None] + offsets[None], 0, len(spec.energy) - 1)
    return spec.energy[taps].max(1)


def frame_times(count: int, fps: float, start_s: float = 0.0) -> np.ndarray:
    """Centres of ``count`` video frames at ``fps`` (frame n shows [n/fps, (n+1)/fps))."""
    return start_s + (np.arange(count, dtype=np.float64) + 0.5) / float(fps)
