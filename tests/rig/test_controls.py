"""Named controls on real tracked landmarks (a preprocessed reference clip; skipped when absent)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from dyntet.rig.controls import NAMES, ControlsError, measures
from dyntet.rig.curves import Curves, read_curves, write_curves
from dyntet.rig.fit import ControlMap, fit_controls
from dyntet.rig.meshes import fitted_keys

BENCH = Path("/work/bench/obama_b")


@pytest.fixture(scope="module")
def clip():
    """(landmarks [T, 478, 2], α [T, K]) of a real preprocessed clip."""
    if not (BENCH / "tracking.npz").exists():
        pytest.skip(f"no preprocessed reference clip at {BENCH}")
    with np.load(BENCH / "tracking.npz") as data:
        return data["landmarks"].astype(np.float64), data["expression"].astype(np.float64)


def test_at_least_twelve_arkit_controls():
    arkit = {"jawOpen", "mouthSmileLeft", "mouthSmileRight", "mouthPucker", "mouthFunnel", "eyeBlinkLeft",
             "eyeBlinkRight", "browInnerUp", "browDownLeft", "browDownRight", "mouthClose", "eyeWideLeft"}
    assert arkit <= set(NAMES) and len(set(NAMES)) == len(NAMES) >= 12


def test_measures_ignore_scale_roll_and_position(clip):
    landmarks = clip[0][:50]
    angle = np.deg2rad(20.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = 1.7 * landmarks @ rotation.T + np.array([40.0, -13.0])
    for name, value in measures(landmarks).items():
        np.testing.assert_allclose(measures(moved)[name], value, atol=1e-9, err_msg=name)


def test_jaw_open_follows_the_lip_gap_and_blinks_are_rare(clip):
    landmarks, _ = clip
    control_map = fit_controls(landmarks, clip[1])
    controls = control_map.controls(landmarks)
    gap = np.linalg.norm(landmarks[:, 14] - landmarks[:, 13], axis=-1)
    gap /= np.linalg.norm(landmarks[:, 263] - landmarks[:, 33], axis=-1)  # the camera distance out
    jaw = controls[:, NAMES.index("jawOpen")]
    assert np.corrcoef(jaw, gap)[0, 1] > 0.5  # related, not the same: lips part without the jaw too
    assert 0.0 <= controls.min() and controls.max() <= 1.5
    blink = controls[:, NAMES.index("eyeBlinkLeft")]
    assert np.mean(blink > 0.5) < 0.2  # eyes are open most of a talking clip


def test_fit_explains_held_out_expressions(clip):
    landmarks, alpha = clip
    train, test = slice(0, 600), slice(600, None)
    control_map = fit_controls(landmarks[train], alpha[train])
    predicted = control_map.expression(control_map.controls(landmarks[test]))
    baseline = np.sqrt(np.mean((alpha[test] - alpha[train].mean(0)) ** 2))
    assert np.sqrt(np.mean((predicted - alpha[test]) ** 2)) < 0.9 * baseline


def test_control_map_round_trips(clip, tmp_path):
    control_map = fit_controls(*clip)
    control_map.save(tmp_path / "controls.npz")
    loaded = ControlMap.load(tmp_path / "controls.npz")
    assert loaded.names == control_map.names
    np.testing.assert_array_equal(loaded.weights, control_map.weights)
    np.testing.assert_array_equal(loaded.controls(clip[0][:5]), control_map.controls(clip[0][:5]))


def test_bad_input_says_what_to_do(tmp_path):
    with pytest.raises(ControlsError, match="478 landmarks"):
        measures(np.zeros((3, 68, 2)))
    with pytest.raises(ControlsError, match="dyntet rig"):
        ControlMap.load(tmp_path / "controls.npz")


def test_fitted_keys_recover_a_linear_rig():
    rng = np.random.default_rng(0)
    basis, deltas = rng.normal(size=(40, 3)), rng.normal(size=(3, 40, 3))
    controls = rng.uniform(0, 1, size=(200, 3))
    meshes = basis + np.einsum("tc,cvd->tvd", controls, deltas)
    keys = fitted_keys(("a", "b", "c"), controls, meshes, ridge=0.0)
    np.testing.assert_allclose(keys.basis, basis, atol=1e-4)
    np.testing.assert_allclose(keys.keys - keys.basis, deltas, atol=1e-4)
    np.testing.assert_allclose(keys.mix(controls[:5]), meshes[:5], atol=1e-4)


def test_curves_round_trip_and_live_link_face_timing(tmp_path):
    values = np.linspace(0, 1, 50 * 2, dtype=np.float32).reshape(50, 2)
    write_curves(tmp_path / "c.csv", Curves(("jawOpen", "eyeBlinkLeft"), values, 25.0))
    back = read_curves(tmp_path / "c.csv", 25.0)
    assert back.names == ("jawOpen", "eyeBlinkLeft")
    np.testing.assert_allclose(back.values, values, atol=1e-6)
    # A 60 fps Live Link Face take (2 s) with a column we have no control for, read at 25 fps.
    rows = ["Timecode,BlendShapeCount,JawOpen,tongueOut"]
    rows += [f"10:00:{s:02d}:{f:02d}.000,2,{(s * 60 + f) / 119:.6f},0.5" for s in range(2) for f in range(60)]
    (tmp_path / "llf.csv").write_text("\n".join(rows) + "\n")
    take = read_curves(tmp_path / "llf.csv", 25.0)
    assert len(take.values) == 50
    with pytest.warns(UserWarning, match="tongueOut"):
        selected = take.select(("jawOpen", "mouthClose"))
    np.testing.assert_allclose(selected[:, 0], np.arange(50) / 25 * 60 / 119, atol=0.01)
    assert not selected[:, 1].any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        take.select(("jawOpen", "tongueOut"))
