"""``bench.py audio-drive``: lip-sync of an avatar driven by speech it never heard, against its footage.

Needs a run trained on real footage: ``DYNTET_BENCH_RUN=/path/to/run`` (a comma-separated list measures
each; keys are then prefixed with the run folder's name). For each run:

1. The audio model is fitted again on the train split's audio and tracked α (as ``dyntet train`` does;
   the test split's audio is never heard).
2. The test split is rendered three times at the dataset's size with its ground-truth head poses over its
   own footage (head cut out): α from the test split's **audio** alone (a recording of its own), the
   **mean** expression (no motion: the floor) and the **tracked** α (the ceiling).
3. MediaPipe's face mesh runs on every render and on the ground-truth frames. ``lmd_*``: mean distance of
   the 40 lip landmarks (``dyntet.data.landmark_regions.LIPS``) between render and ground truth, in
   pixels at 256² (the peers' LMD); ``gap_closed = (lmd_floor − lmd_audio) / (lmd_floor − lmd_ceiling)``;
   ``mouth_corr``: correlation over time of the inner-lip gap (points 13–14), audio render vs ground truth
   (``mouth_corr_ceiling`` the same for the tracked-α render); ``gap_std_*_px``: how much that gap moves
   (standard deviation over time, pixels at 256²) on the audio render, the tracked-α render and the footage.
4. ``realtime_factor``: seconds of speech per second of compute for decode + features + regression of the
   run's whole clip audio (median of 5).
5. ``cross_speaker_corr`` (with ``DYNTET_BENCH_CROSS=/path/to/dataset`` of another speaker, e.g. reagan):
   the avatar driven by the first 10 s of that speaker's audio, head motion its own, on its own torso
   re-timed to that motion (as ``dyntet render`` does); correlation of the
   render's inner-lip gap with the speech's loudness envelope (frame RMS in dB, ±40 ms).
   ``cross_speaker_lip_corr``: the same render's inner-lip gap against the other speaker's own filmed
   inner-lip gap over those 10 s (MediaPipe landmarks of its dataset): lip-sync with the voice's real mouth,
   which loudness only stands in for.
   ``loudness_corr_truth``: the same correlation for the subject's own mouth and voice (ground-truth
   test frames against their audio) — what faithful lip motion scores on this figure.

α-space figures beside them (no rendering): ``alpha_lip_rms_*_mm`` on the test split, and the audio
model's cross-validated lip error on the train split.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._timing import each_run
from dyntet.audio.decode import SAMPLE_RATE, load_speech
from dyntet.audio.features import frame_times
from dyntet.audio.model import inner_lip_gap
from dyntet.audio.run_model import dataset_clip, fit_run_audio
from dyntet.data.landmark_regions import INNER_LIPS, LIPS
from dyntet.face.tracking import FaceMeshTracker
from dyntet.formats.dataset import Dataset
from dyntet.generate.api import open_run
from dyntet.generate.geometry import FrozenGeometry
from dyntet.generate.torso import TorsoConfig, anchor_points, retime
from dyntet.generate.video import footage_backdrop, render_frames, to_linear
from dyntet.model.dyntet import expression_windows
from dyntet.rig.drive_curves import own_motion

UPPER, LOWER = INNER_LIPS
CROSS_SECONDS = 10.0


def _render(loaded, geometry, expression: np.ndarray, poses: np.ndarray, backdrops: list[int] | None) -> np.ndarray:
    """uint8 [T, S, S, 3] renders of α [T, K] at head-to-camera poses [T, 4, 4] over the footage frames
    ``backdrops`` (head cut out) or the background plate."""
    dataset, model = loaded.dataset, loaded.model
    size = dataset.size
    window = loaded.config.model.geometry.expression_window
    windows = expression_windows(torch.from_numpy(np.ascontiguousarray(expression, np.float32)),
                                 torch.arange(len(expression)), window)
    plate = to_linear(dataset.background(), size, torch.device("cpu"))
    intrinsics = torch.from_numpy(dataset.tracking.intrinsics.astype(np.float32))
    images = []
    for start in range(0, len(expression), 4):
        stop = min(start + 4, len(expression))
        if backdrops is None:
            background = plate.expand(stop - start, -1, -1, -1)
        else:
            background = torch.stack([footage_backdrop(dataset, backdrops[t], plate, size, 2.0)
                                      for t in range(start, stop)])
        images.append(render_frames(model, geometry, windows[start:stop],
                                    torch.from_numpy(poses[start:stop].astype(np.float32)), intrinsics, size,
                                    background))
    return np.concatenate(images)


def _landmarks(frames: np.ndarray) -> np.ndarray:
    """float [T, 478, 2] MediaPipe landmarks (NaN where no face was found), one tracker per clip."""
    out = np.full((len(frames), 478, 2), np.nan, np.float32)
    with FaceMeshTracker() as tracker:
        for t, frame in enumerate(frames):
            faces = tracker.process(frame)
            if faces:
                out[t] = faces[0][:, :2]
    return out


def _lmd(a: np.ndarray, b: np.ndarray, scale: float) -> float:
    d = np.linalg.norm(a[:, list(LIPS)] - b[:, list(LIPS)], axis=-1) * scale
    return float(np.nanmean(d))


def _gap(landmarks: np.ndarray) -> np.ndarray:
    return np.linalg.norm(landmarks[:, UPPER] - landmarks[:, LOWER], axis=-1)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 else float("nan")


def _realtime_factor(model, dataset: Dataset) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        speech = load_speech(dataset.audio_path)
        model.expression(speech.samples, frame_times(int(speech.seconds * dataset.fps), dataset.fps))
        times.append(time.perf_counter() - start)
    return speech.seconds / statistics.median(times)


def _loudness_db(samples: np.ndarray, times: np.ndarray, half_s: float = 0.04) -> np.ndarray:
    out = []
    for t in times:
        a, b = int(max(0.0, t - half_s) * SAMPLE_RATE), int((t + half_s) * SAMPLE_RATE)
        chunk = samples[a:b]
        out.append(10 * np.log10(np.mean(chunk.astype(np.float64) ** 2) + 1e-10) if len(chunk) else -100.0)
    return np.asarray(out)


def _filmed_gap(dataset: Dataset, times: np.ndarray) -> np.ndarray:
    """The dataset's tracked inner-lip gap (MediaPipe, pixels) at ``times`` (seconds from its audio's start),
    linearly interpolated between its tracked frames."""
    index = dataset.tracking.frame_index
    own_times = (index - index[0] + 0.5) / dataset.fps
    return np.interp(times, own_times, _gap(dataset.tracking.landmarks))


def measure(run: Path, cross: Path | None) -> dict:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    loaded = open_run(run, "cpu")
    dataset = loaded.dataset
    if dataset.audio_path is None or dataset.tracking.landmarks is None:
        raise SystemExit(f"{run}: the audio-drive benchmark needs real footage with sound")
    started = time.perf_counter()
    model = fit_run_audio(run)
    fit_s = time.perf_counter() - started
    test = dataset.split("test")
    clip = dataset_clip(dataset, test)                 # the test split's audio as a recording of its own
    tracked = dataset.tracking.expression[test.start:test.stop].astype(np.float32)
    mean = np.broadcast_to(loaded.model.mean_expression.cpu().numpy(), tracked.shape).copy()
    audio_alpha = model.expression(clip.samples, clip.times_s)
    poses = dataset.tracking.pose[test.start:test.stop]
    geometry = FrozenGeometry.from_model(loaded.model)
    with torch.inference_mode():
        loaded.model.light.build()
    backdrops = list(test)
    truth = _landmarks(np.stack([dataset.frame(i) for i in test]))
    scale = 256.0 / dataset.size
    figures: dict = {"test_frames": len(test), "fit_s": round(fit_s, 2), "ridge": model.ridge, "kernel_width": model.width}
    marks = {}
    for name, alpha in (("audio", audio_alpha), ("floor", mean), ("ceiling", tracked)):
        marks[name] = _landmarks(_render(loaded, geometry, alpha, poses, backdrops))
        figures[f"lmd_{name}"] = round(_lmd(marks[name], truth, scale), 3)
        figures[f"faces_found_{name}"] = int(np.isfinite(marks[name][:, 0, 0]).sum())
    span = figures["lmd_floor"] - figures["lmd_ceiling"]
    figures["gap_closed"] = round((figures["lmd_floor"] - figures["lmd_audio"]) / span, 3) if span > 0 else None
    figures["mouth_corr"] = round(_corr(_gap(marks["audio"]), _gap(truth)), 3)
    figures["mouth_corr_ceiling"] = round(_corr(_gap(marks["ceiling"]), _gap(truth)), 3)
    for name, found in (("audio", marks["audio"]), ("ceiling", marks["ceiling"]), ("truth", truth)):
        figures[f"gap_std_{name}_px"] = round(float(np.nanstd(_gap(found))) * scale, 3)
    figures["loudness_corr_truth"] = round(_corr(_gap(truth), _loudness_db(clip.samples, clip.times_s)), 3)
    fm = dataset.face_model
    lips = fm.expression_basis[:, list(LIPS)].reshape(fm.num_expression, -1).astype(np.float64)
    for name, alpha in (("audio", audio_alpha), ("floor", mean)):
        figures[f"alpha_lip_rms_{name}_mm"] = round(float(np.sqrt(np.mean(((alpha - tracked) @ lips) ** 2))) * 1e3, 4)
    figures["alpha_gap_corr"] = round(_corr(inner_lip_gap(fm, audio_alpha), inner_lip_gap(fm, tracked)), 3)
    figures["cv_lip_rms_mm"] = round(model.summary["cv_lip_rms_best_m"] * 1e3, 4)
    figures["cv_lip_rms_floor_mm"] = round(model.summary["cv_lip_rms_mean_expression_m"] * 1e3, 4)
    figures["realtime_factor"] = round(_realtime_factor(model, dataset), 1)
    if cross is not None:
        other = Dataset.open(cross)
        speech = load_speech(other.audio_path)
        samples = speech.samples[:int(CROSS_SECONDS * SAMPLE_RATE)]
        count = int(len(samples) / SAMPLE_RATE * dataset.fps)
        times = frame_times(count, dataset.fps)
        alpha = model.expression(samples, times)
        motion = own_motion(dataset, count, dataset.fps, 4.0)
        torso = retime(dataset.tracking.pose, motion, anchor_points(dataset.face_model.mean_shape),
                       dataset.tracking.intrinsics, TorsoConfig())  # as `dyntet render` places the torso
        gap = _gap(_landmarks(_render(loaded, geometry, alpha, motion, [int(i) for i in torso])))
        figures["cross_speaker"] = other.root.name
        figures["cross_speaker_corr"] = round(_corr(gap, _loudness_db(samples, times)), 3)
        figures["cross_speaker_alpha_corr"] = round(_corr(inner_lip_gap(fm, alpha), _loudness_db(samples, times)), 3)
        if other.tracking.landmarks is not None:
            figures["cross_speaker_lip_corr"] = round(_corr(gap, _filmed_gap(other, times)), 3)
    figures["loadavg"] = open("/proc/loadavg").read().split()[0]
    print(f"  {run.name}: {figures}", flush=True)
    return figures


def run() -> dict:
    cross = Path(os.environ["DYNTET_BENCH_CROSS"]) if os.environ.get("DYNTET_BENCH_CROSS") else None
    return each_run(lambda run: measure(run, cross), "a run trained on real footage with sound")
