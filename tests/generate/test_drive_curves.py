"""``dyntet generate --drive curves.csv``: named curves through the run's control map to true meshes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from dyntet.cli import main
from dyntet.formats.sequence import read_sequence
from dyntet.rig.controls import Normalisation
from dyntet.rig.curves import Curves, write_curves
from dyntet.rig.fit import CONTROLS_FILE, ControlMap
from dyntet.rig.meshes import bake_exact


@pytest.fixture(scope="module")
def rigged_run(run, jaw_index, tmp_path_factory):
    """The small avatar with a hand-made control map (a synthetic subject has no landmarks to fit one):
    ``jawOpen`` = the face model's jaw coefficient, ``eyeBlinkLeft`` = nothing."""
    out = tmp_path_factory.mktemp("rigged") / "run"
    shutil.copytree(run, out)
    from dyntet.generate.api import open_run

    loaded = open_run(out, "cpu")
    mean = loaded.model.mean_expression.cpu().numpy().astype(np.float32)
    weights = np.zeros((2, len(mean)), np.float32)
    weights[0, jaw_index] = 1.0
    ControlMap(("jawOpen", "eyeBlinkLeft"), Normalisation(np.zeros(2), np.ones(2)), mean, weights, 0.0,
               0.0).save(out / CONTROLS_FILE)
    return out, loaded


def test_csv_drives_true_meshes(rigged_run, tmp_path):
    run, loaded = rigged_run
    values = np.zeros((12, 3), np.float32)
    values[:, 0] = np.linspace(0.0, 1.0, 12)
    values[:, 2] = 0.7  # a column without a control: ignored with a warning
    write_curves(tmp_path / "take.csv", Curves(("JawOpen", "eyeBlinkLeft", "tongueOut"), values, loaded.dataset.fps))
    out = tmp_path / "seq"
    with pytest.warns(UserWarning, match="tongueOut"):
        assert main(["generate", str(run), "--drive", str(tmp_path / "take.csv"), "-o", str(out), "--texture-size", "64",
                     "--environment-height", "16", "--quiet"]) == 0
    seq = read_sequence(out)
    assert seq.num_frames == 12 and seq.fps == pytest.approx(loaded.dataset.fps)
    from dyntet.generate.geometry import FrozenGeometry

    geometry = FrozenGeometry.from_model(loaded.model)
    expected = bake_exact(geometry, ControlMap.load(run / CONTROLS_FILE), values[:, :2],
                          loaded.config.model.geometry.expression_window)
    assert np.abs(seq.vertices - expected).max() < 1e-5
    assert np.abs(seq.vertices[-1] - seq.vertices[0]).max() > 1e-3  # the jaw opened


def test_csv_without_controls_says_run_rig(run, tmp_path, capsys):
    (tmp_path / "take.csv").write_text("Timecode,BlendShapeCount,jawOpen\n00:00:00:00.000,1,0.5\n")
    assert main(["generate", str(run), "--drive", str(tmp_path / "take.csv"), "-o", str(tmp_path / "seq")]) == 2
    assert "dyntet rig" in capsys.readouterr().err
