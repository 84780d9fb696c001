"""Named controls on real tracked landmarks (a preprocessed reference clip; skipped when absent)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from dyntet.data.landmark_regions import NUM_LANDMARKS
from dyntet.formats.dataset import Dataset, FaceModel
from dyntet.rig.controls import NAMES, ControlsError, Normalisation, head_landmarks, measures
from dyntet.rig.curves import Curves, read_curves, write_curves
from dyntet.rig.fit import ControlMap, clip_points, fit_controls
from dyntet.rig.meshes import fitted_keys

BENCH = Path("/work/bench/obama_b")
REFERENCE_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """(head-space landmarks [T, 478, 3], α [T, K], image landmarks [T, 478, 2]) of a real clip: the team's
    preprocessed obama_b when present, else ``../shared/data``'s obama_b preprocessed here (≈ 20 s)."""
    root = BENCH
    if not (BENCH / "tracking.npz").exists():
        footage = REFERENCE_DATA / "footage" / "obama_b.mp4"
        if not footage.exists():
            pytest.skip(f"no preprocessed reference clip at {BENCH} and no {footage}")
        from dyntet.face.preprocess import PreprocessOptions, preprocess

        root = tmp_path_factory.mktemp("obama_b") / "dataset"
        preprocess(footage, root, PreprocessOptions(size=256))
    dataset = Dataset.open(root)
    frames = slice(0, dataset.num_frames)
    return (clip_points(dataset, frames), dataset.tracking.expression.astype(np.float64),
            dataset.tracking.landmarks.astype(np.float64))


def test_arkit_controls():
    arkit = {"jawOpen", "mouthSmileLeft", "mouthSmileRight", "mouthPucker", "mouthFunnel", "eyeBlinkLeft",
             "eyeBlinkRight", "browInnerUp", "browDownLeft", "browDownRight", "mouthClose", "eyeWideLeft",
             "jawForward", "mouthRollLower", "cheekPuff", "noseSneerLeft", "eyeLookUpRight"}
    assert arkit <= set(NAMES) and len(set(NAMES)) == len(NAMES) == 51


def _neutral(count: int = 1) -> np.ndarray:
    """A small synthetic head-space face (metres): random points, with the nose, lips and mouth corners placed."""
    rng = np.random.default_rng(3)
    face = rng.normal(scale=0.01, size=(NUM_LANDMARKS, 3))
    face[1] = (0.0, -0.011, 0.10)       # nose tip
    face[17] = (0.0, -0.060, 0.080)     # lower lip
    face[61], face[291] = (-0.025, -0.047, 0.066), (0.024, -0.046, 0.065)  # mouth corners
    face[13], face[14] = (0.0, -0.041, 0.081), (0.0, -0.048, 0.079)        # inner lips
    return np.repeat(face[None], count, 0)


def test_measures_read_head_space_geometry():
    face = _neutral(2)
    face[1, [14, 17, 84, 314, 152]] += (0.0, -0.005, 0.0)  # the jaw drops 5 mm
    face[1, 473] += (0.002, 0.0, 0.0)                     # the left iris looks out (to the subject's left)
    face[1, [61, 291]] += (0.0, 0.0, -0.003)              # both corners pulled back (dimple)
    m = measures(face)
    np.testing.assert_allclose(m["jaw"][1] - m["jaw"][0], 0.005, atol=1e-9)
    assert m["gaze_in_left"][1] < m["gaze_in_left"][0] and m["gaze_in_right"][1] == m["gaze_in_right"][0]
    np.testing.assert_allclose(m["corner_back_left"][1] - m["corner_back_left"][0], 0.003, atol=1e-9)
    np.testing.assert_allclose(m["corner_back_right"][1] - m["corner_back_right"][0], 0.003, atol=1e-9)


def test_controls_explain_most_of_the_clip_expression(clip):
    """Measured in image pixels (pose mixed into every gap, 25 controls) they explained 42 % of α's variance."""
    points, alpha, _ = clip
    control_map = fit_controls(points, alpha)
    residual = alpha - control_map.expression(control_map.controls(points))
    explained = 1 - (residual ** 2).sum() / ((alpha - alpha.mean(0)) ** 2).sum()
    assert explained > 0.6


def test_jaw_open_follows_the_lip_gap_and_blinks_are_rare(clip):
    points, alpha, landmarks = clip
    control_map = fit_controls(points, alpha)
    controls = control_map.controls(points)
    gap = np.linalg.norm(landmarks[:, 14] - landmarks[:, 13], axis=-1)
    gap /= np.linalg.norm(landmarks[:, 263] - landmarks[:, 33], axis=-1)  # the camera distance out
    jaw = controls[:, NAMES.index("jawOpen")]
    assert np.corrcoef(jaw, gap)[0, 1] > 0.5  # related, not the same: lips part without the jaw too
    assert 0.0 <= controls.min() and controls.max() <= 1.5
    blink = controls[:, NAMES.index("eyeBlinkLeft")]
    assert np.mean(blink > 0.5) < 0.2  # eyes are open most of a talking clip


def test_fit_explains_held_out_expressions(clip):
    landmarks, alpha, _ = clip
    train, test = slice(0, 600), slice(600, None)
    control_map = fit_controls(landmarks[train], alpha[train])
    predicted = control_map.expression(control_map.controls(landmarks[test]))
    baseline = np.sqrt(np.mean((alpha[test] - alpha[train].mean(0)) ** 2))
    assert np.sqrt(np.mean((predicted - alpha[test]) ** 2)) < 0.75 * baseline


def test_control_map_round_trips(clip, tmp_path):
    control_map = fit_controls(*clip[:2])
    control_map.save(tmp_path / "controls.npz")
    loaded = ControlMap.load(tmp_path / "controls.npz")
    assert loaded.names == control_map.names
    np.testing.assert_array_equal(loaded.weights, control_map.weights)
    np.testing.assert_array_equal(loaded.controls(clip[0][:5]), control_map.controls(clip[0][:5]))


def test_bad_input_says_what_to_do(tmp_path):
    with pytest.raises(ControlsError, match="478 landmarks"):
        measures(np.zeros((3, 478, 2)))
    with pytest.raises(ControlsError, match="synthetic"):
        head_landmarks(FaceModel(np.zeros((68, 3)), np.zeros((2, 68, 3)), np.zeros((0, 3))), np.zeros((3, 2)))
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


def test_projection_stays_on_the_sliders_and_reproduces_alpha():
    """More controls than α dimensions: the projection must still be in 0..1.5 and give α back."""
    from dyntet.rig.sequence_rig import SLIDER_MAX, project

    rng = np.random.default_rng(1)
    names = tuple(f"c{i}" for i in range(6))
    control_map = ControlMap(names, Normalisation(np.zeros(6), np.ones(6)), rng.normal(size=4).astype(np.float32),
                             rng.normal(size=(6, 4)).astype(np.float32), 0.0, 0.0)
    true = rng.uniform(0.0, 1.0, size=(20, 6)) * (rng.uniform(size=(20, 6)) < 0.5)
    alpha = control_map.expression(true)
    controls = project(control_map, alpha, ridge=1e-6)
    assert controls.min() >= 0.0 and controls.max() <= SLIDER_MAX
    np.testing.assert_allclose(control_map.expression(controls), alpha, atol=2e-3)
    plain, *_ = np.linalg.lstsq(control_map.weights.T, (alpha - control_map.bias).T, rcond=None)
    assert plain.min() < 0.0  # what the bounds are for: the minimum-norm answer leaves the sliders
