"""Build a workspace with a tiny trained avatar that has named controls, and a sequence generated from it.

Run as a script (``python rigged_run.py WORKSPACE``) so that torch never loads into the Blender test
process. The synthetic subject has no MediaPipe landmarks, so ``dyntet rig`` cannot measure its
controls; but its α *are* named rig controls (``face_rig.RIG_CONTROLS``), so the control map here is the
identity from eight ARKit names onto them, and the keys are fitted to the training clip's true meshes
exactly as ``dyntet rig`` fits them (:func:`dyntet.rig.meshes.fitted_keys`).

Writes ``datasets/synth``, ``runs/synth`` (with ``controls.npz`` and ``control_keys.npz``) and
``sequences/synth_train`` (frames 0:16 of the training clip, with ``rig.npz`` and ``controls.npz``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "generate"))

ARKIT_OF_RIG = {"jaw_open": "jawOpen", "smile_left": "mouthSmileLeft", "smile_right": "mouthSmileRight",
                "pucker": "mouthPucker", "blink_left": "eyeBlinkLeft", "blink_right": "eyeBlinkRight",
                "brow_raise": "browInnerUp", "mouth_stretch": "mouthStretchLeft"}
SEQUENCE = "sequences/synth_train"
FRAMES = "0:16"


def build(workspace: Path) -> None:
    import torch

    from dyntet.data.face_rig import RIG_CONTROLS
    from dyntet.data.synthetic import SyntheticConfig, make_subject
    from dyntet.generate.api import GenerateConfig, generate, open_run
    from dyntet.generate.bake import BakeConfig
    from dyntet.generate.drive import DriveOptions, FrameRange
    from dyntet.generate.geometry import FrozenGeometry
    from dyntet.rig.controls import Normalisation
    from dyntet.rig.fit import CONTROLS_FILE, ControlMap
    from dyntet.rig.meshes import clip_vertices, fitted_keys
    from dyntet.rig.sequence_rig import KEYS_FILE
    from dyntet.train.api import train
    from generate_helpers import SMALL_RUN

    torch.set_num_threads(1)
    dataset, run = workspace / "datasets" / "synth", workspace / "runs" / "synth"
    make_subject(dataset, SyntheticConfig(size=64, num_frames=40, fps=25.0, seed=3))
    train(dataset, run, preset="preview", overrides=SMALL_RUN, device="cpu")

    names = tuple(ARKIT_OF_RIG[name] for name in RIG_CONTROLS)
    count = len(names)
    ControlMap(names, Normalisation(np.zeros(count), np.ones(count)), np.zeros(count, np.float32),
               np.eye(count, dtype=np.float32), ridge=0.0, fit_rms=0.0).save(run / CONTROLS_FILE)
    loaded = open_run(run, "cpu")
    frames = loaded.dataset.split("train")
    alpha = loaded.dataset.tracking.expression[frames.start:frames.stop]
    meshes = clip_vertices(FrozenGeometry.from_model(loaded.model), alpha,
                           loaded.config.model.geometry.expression_window)
    keys = fitted_keys(names, alpha, meshes)
    np.savez(run / KEYS_FILE, names=np.array(keys.names), basis=keys.basis, keys=keys.keys)

    generate(run, workspace / SEQUENCE, GenerateConfig(
        drive="train", drive_options=DriveOptions(frames=FrameRange.parse(FRAMES)), bake=BakeConfig(size=64),
        environment_height=16, device="cpu"))


if __name__ == "__main__":
    build(Path(sys.argv[1]))
