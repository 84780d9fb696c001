"""The subject's audio → expression model: kernel ridge regression from context log-mel to α.

Why kernel ridge: on a few minutes (often seconds) of one speaker, a smooth non-linear map from ±200 ms
of normalised log-mel to the tracked α generalises better than a linear one and than the small networks
we tried (``docs/benchmarks.md``: cross-validated lip error and lip-gap correlation improve on every clip),
it fits in about a second and still runs hundreds of times faster than real time. Its Gaussian kernel
width and penalty are chosen by cross-validation over contiguous blocks of the training clip
(neighbouring frames are nearly copies, so shuffled folds would overfit), scored on the lip landmarks the
face model places — the part of α the audio can explain.

Silence is handled outside the regression: frames whose loudness is far below the recording's speech
(or below an absolute floor) are gated to the subject's *rest* expression, the mean α of its most
closed-mouthed training frames, so a pause gives a closed, still mouth instead of regressing on noise.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dyntet.audio.decode import SAMPLE_RATE
from dyntet.audio.features import (FeatureConfig, Spectrum, VoiceStats, frame_features, frame_loudness,
                                   normalised, spectrum, voice_stats)
from dyntet.data.landmark_regions import INNER_LIPS, LIPS
from dyntet.formats.atomic import write_bytes_atomic
from dyntet.formats.dataset import FaceModel
from dyntet.progress import Progress, ProgressFn

AUDIO_MODEL_FILE = "audio_model.npz"
VERSION = 2
RIDGE_GRID = (0.1, 0.3, 1.0, 3.0)
"""Penalties λ of ``(K + λ I)``, K the Gaussian kernel matrix of the training frames."""
WIDTH_GRID = (0.5, 1.0, 2.0, 4.0)
"""Kernel widths: ``k(z, z') = exp(−‖z − z'‖² / (width · D))`` on standardised features of dimension D."""
CV_MAX_FRAMES = 2000
"""Cross-validation scores every k-th frame of longer footage (each fit is O(N³)); the final fit uses all."""


class AudioModelError(ValueError):
    """The audio model cannot be fitted or loaded; the message says what to do."""


class OutdatedAudioModel(AudioModelError):
    """The file holds a model of an earlier version of dyntet: fit it again (nothing else is lost)."""


@dataclass(frozen=True)
class GateConfig:
    """When a frame counts as silence."""

    below_speech: float = 10.4
    """Nats (≈ 45 dB) below the recording's loud end (its 95th percentile of frame energy): far below a
    speaker's pauses, which the regression itself has learnt from the training clip."""
    floor_dbfs: float = -60.0
    """Anything quieter than this (RMS, dB full scale) is silence whatever the recording."""
    soft: float = 1.5
    """Width, in nats, of the ramp from rest to speech (no pops at the edges)."""
    hold_hops: int = 15
    """A frame is silent only when the whole ±150 ms around it is: stop closures inside words are not
    pauses."""


@dataclass
class AudioModel:
    """Everything needed to turn a recording into α: features, standardisation, the map, the gate."""

    feature_mean: np.ndarray   # float32 [D]
    feature_std: np.ndarray    # float32 [D]
    support: np.ndarray        # float32 [N, D]: the training frames' standardised features
    weights: np.ndarray        # float32 [N, K]: their dual coefficients
    bias: np.ndarray           # float32 [K]
    rest: np.ndarray           # float32 [K]: α of the closed, silent mouth
    voice_mean: np.ndarray     # float32 [n_mels]: the training voice (prior of short recordings' CMVN)
    voice_std: np.ndarray      # float32 [n_mels]
    ridge: float
    width: float
    smoothing_frames: float = 0.5
    """σ of the Gaussian smoothing of α over time, in video frames."""
    features: FeatureConfig = field(default_factory=FeatureConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    summary: dict[str, Any] = field(default_factory=dict)
    """Provenance and fit figures (datasets, frames, seconds, cross-validated errors)."""

    @property
    def num_expression(self) -> int:
        return int(self.weights.shape[1])

    def expression(self, samples: np.ndarray, times_s: np.ndarray) -> np.ndarray:
        """α float32 [T, K] for video frames centred at ``times_s`` (seconds) of the recording ``samples``
        (float [S] at 16 kHz)."""
        spec = spectrum(samples, self.features)
        raw = self._regress(spec, times_s)
        speaking = self.speech_weight(spec, times_s)
        alpha = self.rest[None] + speaking[:, None] * (raw - self.rest[None])
        return gaussian_smooth(alpha, self.smoothing_frames).astype(np.float32)

    def _regress(self, spec: Spectrum, times_s: np.ndarray) -> np.ndarray:
        prior = VoiceStats(self.voice_mean.astype(np.float64), self.voice_std.astype(np.float64), 0)
        x = frame_features(normalised(spec, self.features, prior), times_s, self.features)
        z = (x - self.feature_mean) / self.feature_std
        return gaussian_kernel(z, self.support, self.width) @ self.weights + self.bias

    def speech_weight(self, spec: Spectrum, times_s: np.ndarray) -> np.ndarray:
        """float [T] in [0, 1]: 0 in silence, 1 in speech (see :class:`GateConfig`)."""
        loud = frame_loudness(spec, times_s, self.features, self.gate.hold_hops)
        threshold = max(float(np.percentile(spec.energy, 95)) - self.gate.below_speech,
                        energy_at_dbfs(self.gate.floor_dbfs, self.features))
        return np.clip((loud - threshold) / self.gate.soft, 0.0, 1.0)

    def save(self, path: Path) -> None:
        meta = {"version": VERSION, "ridge": self.ridge, "width": self.width, "smoothing_frames": self.smoothing_frames,
                "features": self.features.to_dict(), "gate": self.gate.__dict__, "summary": self.summary}
        buffer = io.BytesIO()
        np.savez(buffer, feature_mean=self.feature_mean, feature_std=self.feature_std, support=self.support,
                 weights=self.weights,
                 bias=self.bias, rest=self.rest, voice_mean=self.voice_mean, voice_std=self.voice_std,
                 meta=np.array(json.dumps(meta)))
        write_bytes_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> AudioModel:
        from dyntet_formats.files import load_npz

        path = Path(path)
        hint = f"fit it again with `dyntet audio-fit {path.parent}`"
        data = load_npz(path, ("meta",), hint, AudioModelError)
        meta = json.loads(str(data["meta"]))
        if meta.get("version") != VERSION:  # before the arrays: an earlier version's are not these
            raise OutdatedAudioModel(f"{path} has version {meta.get('version')}, this dyntet reads {VERSION}: {hint}")
        missing = [name for name in ("feature_mean", "feature_std", "support", "weights", "bias", "rest",
                                     "voice_mean", "voice_std") if name not in data]
        if missing:
            raise AudioModelError(f"{path} lacks the arrays {missing}: {hint}")
        return cls(data["feature_mean"], data["feature_std"], data["support"], data["weights"], data["bias"],
                   data["rest"], data["voice_mean"], data["voice_std"], float(meta["ridge"]), float(meta["width"]),
                   float(meta["smoothing_frames"]), FeatureConfig.from_dict(meta["features"]),
                   GateConfig(**meta["gate"]), meta.get("summary", {}))


@dataclass
class TrainingClip:
    """One recording and the α tracked on its frames (in the avatar's face-model basis)."""

    samples: np.ndarray      # float [S] at 16 kHz
    times_s: np.ndarray      # float [N] frame centres in the recording
    expression: np.ndarray   # float [N, K]
    name: str


def fit_audio_model(clips: list[TrainingClip], face_model: FaceModel, features: FeatureConfig = FeatureConfig(),
                    gate: GateConfig = GateConfig(), smoothing_frames: float = 0.5, folds: int = 5,
                    progress: ProgressFn | None = None) -> AudioModel:
    """Fit the model on the clips, whose α are in ``face_model``'s basis (its lip points score the
    cross-validation; its inner-lip gap picks the rest expression).

    Args:
        folds: contiguous cross-validation blocks for choosing the ridge penalty.
    """
    if not clips:
        raise AudioModelError("no training audio: the avatar's footage has no sound track")
    xs, ys, voices = [], [], []
    for i, clip in enumerate(clips):
        if len(clip.times_s) != len(clip.expression):
            raise AudioModelError(f"{clip.name}: {len(clip.times_s)} frame times for {len(clip.expression)} α")
        spec = spectrum(clip.samples, features)
        xs.append(frame_features(normalised(spec, features), clip.times_s, features))
        ys.append(np.asarray(clip.expression, np.float64))
        voices.append(voice_stats(spec, features))
        _report(progress, "features", i + 1, len(clips), clip.name)
    counts = np.array([v.frames for v in voices], np.float64)[:, None]
    voice_mean = (counts * np.stack([v.mean for v in voices])).sum(0) / counts.sum()
    voice_std = np.sqrt((counts * np.stack([v.std ** 2 for v in voices])).sum(0) / counts.sum())
    x, y = np.concatenate(xs).astype(np.float64), np.concatenate(ys)
    if len(x) < 4 * folds:
        raise AudioModelError(f"only {len(x)} frames with audio: at least {4 * folds} are needed to fit the model")
    mean, std = x.mean(0), np.maximum(x.std(0), 1e-6)
    z = (x - mean) / std
    basis = np.asarray(face_model.expression_basis, np.float64)
    lips = basis[:, list(LIPS), :].reshape(len(basis), -1)  # [K, 3L]
    stride = -(-len(z) // CV_MAX_FRAMES)
    cv = _cross_validate(z[::stride], y[::stride], lips, folds, progress)
    baseline = cv.pop("mean")
    width, ridge = min(cv, key=cv.get)
    _report(progress, "fit", 0, 1, f"width {width:g}, penalty {ridge:g}")
    weights, bias = _kernel_ridge(z, y, width, ridge)
    gap = inner_lip_gap(face_model, y)
    rest = y[gap <= np.percentile(gap, 10)].mean(0)
    _report(progress, "fit", 1, 1, f"width {width:g}, penalty {ridge:g}")
    summary = {"clips": [c.name for c in clips], "frames": int(len(x)),
               "seconds": round(float(sum(len(c.samples) for c in clips) / SAMPLE_RATE), 2),
               "cv_lip_rms_m": {f"{w:g}/{r:g}": float(np.sqrt(v)) for (w, r), v in cv.items()},
               "cv_lip_rms_best_m": float(np.sqrt(cv[width, ridge])),
               "cv_lip_rms_mean_expression_m": float(np.sqrt(baseline))}
    return AudioModel(mean.astype(np.float32), std.astype(np.float32), z.astype(np.float32),
                      weights.astype(np.float32), bias.astype(np.float32), rest.astype(np.float32),
                      voice_mean.astype(np.float32), voice_std.astype(np.float32), float(ridge), float(width),
                      float(smoothing_frames), features, gate, summary)


def gaussian_kernel(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    """float [len(a), len(b)]: ``exp(−‖a_i − b_j‖² / (width · D))`` for standardised features [*, D]."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2.0 * a @ b.T
    return np.exp(-np.maximum(squared, 0.0) / (width * a.shape[1]))


def _kernel_ridge(z: np.ndarray, y: np.ndarray, width: float, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Dual coefficients [N, K] and bias [K]: ``α = (K + λ I)⁻¹ (y − ȳ)``, prediction ``ȳ + k(z) α``."""
    y_mean = y.mean(0)
    gram = gaussian_kernel(z, z, width) + ridge * np.eye(len(z))
    return np.linalg.solve(gram, y - y_mean), y_mean


def _cross_validate(z: np.ndarray, y: np.ndarray, lips: np.ndarray, folds: int,
                    progress: ProgressFn | None) -> dict[Any, float]:
    """Mean squared lip-landmark error (m²) per (width, penalty) over contiguous held-out blocks, plus the
    mean-α baseline under ``"mean"``."""
    edges = np.linspace(0, len(z), folds + 1).round().astype(int)
    errors: dict[Any, list[float]] = {(w, r): [] for w in WIDTH_GRID for r in RIDGE_GRID}
    errors["mean"] = []
    for f in range(folds):
        held = np.zeros(len(z), bool)
        held[edges[f]:edges[f + 1]] = True
        zt, yt, zh, yh = z[~held], y[~held], z[held], y[held]
        y_mean = yt.mean(0)
        for w in WIDTH_GRID:
            values, vectors = np.linalg.eigh(gaussian_kernel(zt, zt, w))
            projected = vectors.T @ (yt - y_mean)
            cross = gaussian_kernel(zh, zt, w) @ vectors
            for r in RIDGE_GRID:
                pred = y_mean + cross @ (projected / (values + r)[:, None])
                errors[w, r].append(float(np.mean(((pred - yh) @ lips) ** 2)))
        errors["mean"].append(float(np.mean(((y_mean - yh) @ lips) ** 2)))
        _report(progress, "cross-validate", f + 1, folds, f"block {f + 1} of {folds}")
    return {key: float(np.mean(v)) for key, v in errors.items()}


def inner_lip_gap(face_model: FaceModel, expression: np.ndarray) -> np.ndarray:
    """Distance between the inner lips (metres) per frame of α [..., K]."""
    pair = list(INNER_LIPS)
    mean = np.asarray(face_model.mean_shape, np.float64)[pair]                  # [2, 3]
    basis = np.asarray(face_model.expression_basis, np.float64)[:, pair]        # [K, 2, 3]
    points = mean + np.tensordot(np.asarray(expression, np.float64), basis, axes=([-1], [0]))
    return np.linalg.norm(points[..., 0, :] - points[..., 1, :], axis=-1)


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 (edges reflected); σ ≤ 0 returns the input."""
    if sigma <= 0 or len(values) < 2:
        return np.asarray(values)
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(np.asarray(values, np.float64), sigma, axis=0, mode="nearest")


def energy_at_dbfs(dbfs: float, features: FeatureConfig) -> float:
    """The frame energy (nats, as :func:`~dyntet.audio.features.spectrum` computes it) of noise at ``dbfs`` RMS."""
    mean_square = 10.0 ** (dbfs / 10.0)
    window_power = float(np.mean(np.hanning(features.window) ** 2))
    return float(np.log(mean_square * features.window * window_power * features.n_fft / 2.0))


def _report(progress: ProgressFn | None, stage: str, step: int, total: int, message: str) -> None:
    if progress is not None:
        progress(Progress(stage, step, total, message))
