"""Reader of a sequence's named-control rig, ``SEQ/controls.npz`` (numpy only; written by ``dyntet
generate`` when the run has controls from ``dyntet rig``; layout in ``docs/dataset-format.md``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dyntet_formats.sequence import SequenceFormatError

CONTROLS_FILE = "controls.npz"


@dataclass
class ControlRig:
    """Named keys of a sequence (head space, metres) and their per-frame values."""

    names: list[str]
    basis: np.ndarray
    """float32 [V, 3]: every control at 0."""
    keys: np.ndarray
    """float32 [C, V, 3]: the mesh at one control = 1."""
    weights: np.ndarray
    """float32 [T, C]: the controls of each frame of the sequence."""
    slider_max: float
    run: str = ""
    """The run folder that made the keys, as a path on the backend's machine (Bake exact sends it back)."""

    def mix(self, weights: np.ndarray) -> np.ndarray:
        """Linear key mix float32 [T, V, 3] of weights [T, C] (what Blender shows without correctives)."""
        deltas = (self.keys - self.basis).reshape(len(self.names), -1)
        flat = self.basis.reshape(-1) + np.asarray(weights, np.float32) @ deltas
        return flat.reshape(len(weights), *self.basis.shape).astype(np.float32)


def has_controls(root: str | Path) -> bool:
    return (Path(root) / CONTROLS_FILE).is_file()


def read_controls(root: str | Path, num_frames: int, num_vertices: int, frames: slice | None = None) -> ControlRig:
    """Read and check ``controls.npz`` against the sequence's frame and vertex counts."""
    path = Path(root) / CONTROLS_FILE
    if not path.is_file():
        raise SequenceFormatError(f"{root} has no named controls ({CONTROLS_FILE}): run `dyntet rig RUN` once, then "
                                  "generate the sequence again")
    try:
        with np.load(path) as data:
            names = [str(n) for n in data["names"]]
            basis, keys = data["basis"].astype(np.float32), data["keys"].astype(np.float32)
            weights = data["weights"].astype(np.float32)
            meta = json.loads(str(data["meta"])) if "meta" in data else {}
    except (OSError, KeyError, ValueError) as exc:
        raise SequenceFormatError(f"{path} cannot be read ({exc})") from None
    if basis.shape != (num_vertices, 3) or keys.shape != (len(names), num_vertices, 3):
        raise SequenceFormatError(f"{path}: keys do not match the sequence's {num_vertices} vertices")
    if weights.shape != (num_frames, len(names)):
        raise SequenceFormatError(f"{path}: weights {weights.shape} do not match {num_frames} frames × {len(names)}")
    if not all(np.isfinite(a).all() for a in (basis, keys, weights)):
        raise SequenceFormatError(f"{path} holds NaN or infinite values")
    return ControlRig(names, basis, keys, weights if frames is None else weights[frames],
                      float(meta.get("slider_max", 1.5)), str(meta.get("run", "")))
