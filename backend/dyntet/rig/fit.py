"""The controls → α map: a ridge regression fitted on the training clip, stored in the run folder.

Each control k gets a direction ``W[k]`` in expression space, so α(c) = b + Σ_k c_k W[k]. The fit is
linear on purpose: a control at 1 is then one fixed expression (a shape key), controls add like shape
keys, and driving from another clip is a matrix product. The ridge term keeps directions of controls
that rarely move (a one-sided blink in a clip with few blinks) small instead of fitting noise.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dyntet.formats.atomic import write_bytes_atomic
from dyntet.rig.controls import NAMES, ControlsError, Normalisation, head_landmarks, measures

CONTROLS_FILE = "controls.npz"
VERSION = 2
"""2: controls measured in head space (51 ARKit names); 1 measured image pixels."""


@dataclass
class ControlMap:
    """Named controls of one avatar: how to measure them and what α each one means."""

    names: tuple[str, ...]
    normalisation: Normalisation
    bias: np.ndarray
    """float32 [K]: α with every control at 0."""
    weights: np.ndarray
    """float32 [C, K]: α change per unit of each control."""
    ridge: float
    fit_rms: float
    """RMS of α − α(c) on the frames it was fitted on (α units)."""

    def controls(self, points: np.ndarray) -> np.ndarray:
        """Controls float32 [T, C] of a clip's head-space landmarks [T, 478, 3] (this subject's normalisation)."""
        return self.normalisation.apply(measures(points))

    def expression(self, controls: np.ndarray) -> np.ndarray:
        """α float32 [T, K] of controls [T, C]."""
        controls = np.asarray(controls, np.float32)
        if controls.ndim != 2 or controls.shape[1] != len(self.names):
            raise ControlsError(f"expected controls [T, {len(self.names)}], got shape {controls.shape}")
        return (self.bias + controls @ self.weights).astype(np.float32)

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, names=np.array(self.names), zero=self.normalisation.zero, one=self.normalisation.one,
                 bias=self.bias, weights=self.weights,
                 meta=np.array(json.dumps({"version": VERSION, "ridge": self.ridge, "fit_rms": self.fit_rms})))
        write_bytes_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> ControlMap:
        path = Path(path)
        if not path.exists():
            raise ControlsError(f"{path} does not exist: fit the controls with `dyntet rig {path.parent}`")
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("version") != VERSION:
                raise ControlsError(f"{path} has version {meta.get('version')}, this dyntet reads {VERSION}: "
                                    f"re-run `dyntet rig {path.parent}`")
            return cls(tuple(str(n) for n in data["names"]), Normalisation(data["zero"], data["one"]),
                       data["bias"].astype(np.float32), data["weights"].astype(np.float32),
                       float(meta["ridge"]), float(meta["fit_rms"]))


def fit_controls(points: np.ndarray, expression: np.ndarray, ridge: float = 1e-3) -> ControlMap:
    """Fit the map on a clip: head-space landmarks float [T, 478, 3], its tracked α float [T, K].

    ``ridge`` is per frame (the penalty is ``ridge · T · ‖W‖²``), so it means the same on any clip length.
    """
    expression = np.asarray(expression, np.float64)
    if expression.ndim != 2 or len(expression) != len(points):
        raise ControlsError(f"expression {expression.shape} does not match landmarks {np.shape(points)}")
    measured = measures(points)
    normalisation = Normalisation.fit(measured)
    controls = normalisation.apply(measured).astype(np.float64)
    c_mean, a_mean = controls.mean(0), expression.mean(0)
    centred = controls - c_mean
    gram = centred.T @ centred + ridge * len(controls) * np.eye(controls.shape[1])
    weights = np.linalg.solve(gram, centred.T @ (expression - a_mean))
    bias = a_mean - c_mean @ weights
    residual = expression - (bias + controls @ weights)
    return ControlMap(NAMES, normalisation, bias.astype(np.float32), weights.astype(np.float32), ridge,
                      float(np.sqrt(np.mean(residual ** 2))))


def clip_points(dataset, frames: slice) -> np.ndarray:
    """Head-space landmarks float64 [T, 478, 3] of a dataset's frames (what the controls measure)."""
    return head_landmarks(dataset.face_model, dataset.tracking.expression[frames.start:frames.stop])


def fit_run_controls(run: Path, ridge: float = 1e-3) -> ControlMap:
    """Fit on the run's training frames and save ``RUN/controls.npz`` (torch-free: reads the dataset only)."""
    from dyntet.formats.dataset import Dataset

    run = Path(run)
    config = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else None
    if config is None:
        raise ControlsError(f"{run} is not a run folder (no config.json): train one with `dyntet train`")
    dataset = Dataset.open(Path(config["dataset"]))
    frames = dataset.split("train")
    control_map = fit_controls(clip_points(dataset, frames),
                               dataset.tracking.expression[frames.start:frames.stop], ridge)
    control_map.save(run / CONTROLS_FILE)
    return control_map
