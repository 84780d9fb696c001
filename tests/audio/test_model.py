"""The audio → expression model: it learns a mouth that follows speech, and silence keeps the mouth shut."""

from __future__ import annotations

import numpy as np
import pytest

from audio_helpers import FPS, talking
from dyntet.audio.decode import SAMPLE_RATE
from dyntet.audio.features import FeatureConfig, frame_features, frame_times, spectrum
from dyntet.audio.model import AudioModel, AudioModelError, TrainingClip, fit_audio_model, inner_lip_gap


def test_spectrum_runs_at_100_hz_and_context_repeats_the_edges():
    spec = spectrum(np.zeros(SAMPLE_RATE, np.float32))
    assert spec.mel.shape[1] == 40 and abs(len(spec.mel) - 100) <= 2
    mel = np.arange(10, dtype=np.float32)[:, None]
    taps = frame_features(mel, np.array([0.0, 0.05]), FeatureConfig(context=(-20, 0, 3)))
    assert taps.tolist() == [[0, 0, 3], [0, 5, 8]]


def test_learns_a_mouth_that_follows_unheard_speech(model_and_truth):
    model, fm, _, audio, opening = model_and_truth
    predicted = model.expression(audio, frame_times(len(opening), FPS))
    assert predicted.shape == (len(opening), fm.num_expression)
    assert np.corrcoef(predicted[:, 0], opening)[0, 1] > 0.8
    gap_predicted, gap_true = inner_lip_gap(fm, predicted), inner_lip_gap(fm, opening[:, None] * np.eye(4)[0])
    assert np.corrcoef(gap_predicted, gap_true)[0, 1] > 0.8


def test_another_voice_drives_the_mouth_too(model_and_truth):
    model, _, _, _, _ = model_and_truth
    audio, opening = talking(12.0, seed=9, pitch_hz=210.0)  # a higher voice than the training one
    predicted = model.expression(0.2 * audio, frame_times(len(opening), FPS))  # and recorded quieter
    assert np.corrcoef(predicted[:, 0], opening)[0, 1] > 0.6


@pytest.mark.parametrize("noise_dbfs", [None, -75.0])
def test_silence_gives_a_closed_still_mouth(model_and_truth, noise_dbfs):
    model, fm, train_alpha, _, _ = model_and_truth
    seconds = 3.0
    samples = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    if noise_dbfs is not None:
        samples += np.random.default_rng(0).normal(0, 10 ** (noise_dbfs / 20), len(samples)).astype(np.float32)
    alpha = model.expression(samples, frame_times(int(seconds * FPS), FPS))
    assert np.abs(alpha - alpha[0]).max() < 1e-6                        # still
    np.testing.assert_allclose(alpha[0], model.rest, atol=1e-6)
    gaps = inner_lip_gap(fm, train_alpha)
    assert inner_lip_gap(fm, alpha[0]) <= np.percentile(gaps, 25)      # closed: among the clip's most closed


def test_a_pause_inside_speech_closes_the_mouth(model_and_truth):
    model, fm, train_alpha, audio, _ = model_and_truth
    pause = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
    samples = np.concatenate([audio[:3 * SAMPLE_RATE], pause, audio[3 * SAMPLE_RATE:6 * SAMPLE_RATE]])
    times = frame_times(int(len(samples) / SAMPLE_RATE * FPS), FPS)
    alpha = model.expression(samples, times)
    inside = (times > 3.4) & (times < 4.1)  # clear of the ramps at either end
    np.testing.assert_allclose(alpha[inside], np.broadcast_to(model.rest, alpha[inside].shape), atol=1e-5)


def test_save_and_load_predict_the_same(model_and_truth, tmp_path):
    model, _, _, audio, opening = model_and_truth
    model.save(tmp_path / "audio_model.npz")
    loaded = AudioModel.load(tmp_path / "audio_model.npz")
    times = frame_times(len(opening), FPS)
    np.testing.assert_allclose(loaded.expression(audio, times), model.expression(audio, times), atol=1e-5)
    assert loaded.summary["clips"] == ["talking"] and loaded.ridge == model.ridge


def test_fitting_needs_audio():
    from audio_helpers import face_model

    with pytest.raises(AudioModelError, match="no training audio"):
        fit_audio_model([], face_model())
    short = TrainingClip(np.zeros(800, np.float32), frame_times(2, FPS), np.zeros((2, 4)), "tiny")
    with pytest.raises(AudioModelError, match="frames"):
        fit_audio_model([short], face_model())


def test_corrupt_model_file_says_how_to_refit(tmp_path):
    path = tmp_path / "audio_model.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(AudioModelError, match="dyntet audio-fit"):
        AudioModel.load(path)


def test_cross_validation_scores_the_model_the_fit_would_make():
    """The eigen-decomposed solve that scores every penalty equals the direct fit on the kept blocks."""
    from audio_helpers import face_model
    from dyntet.audio.model import RIDGE_GRID, WIDTH_GRID, _cross_validate, _kernel_ridge, gaussian_kernel
    from dyntet.data.landmark_regions import LIPS

    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(60, 5)), rng.normal(size=(60, 4))
    basis = face_model().expression_basis.astype(np.float64)
    lips = basis[:, list(LIPS)].reshape(4, -1)
    scores = _cross_validate(z, y, lips, 3, None)
    held = np.zeros(60, bool)
    errors = []
    for block in range(3):
        held[:] = False
        held[block * 20:(block + 1) * 20] = True
        weights, bias = _kernel_ridge(z[~held], y[~held], 2.0, 0.3)
        pred = bias + gaussian_kernel(z[held], z[~held], 2.0) @ weights
        errors.append(np.mean(((pred - y[held]) @ lips) ** 2))
    assert scores[2.0, 0.3] == pytest.approx(np.mean(errors), rel=1e-9)
    assert set(scores) == {(w, r) for w in WIDTH_GRID for r in RIDGE_GRID} | {"mean"}


def test_long_footage_is_cross_validated_on_a_subset_and_fitted_on_all(monkeypatch):
    """Cross-validation is O(N³) per fit: footage longer than the cap is scored on every k-th frame, but
    the model keeps every frame (and still learns the mouth)."""
    import dyntet.audio.model as audio_model
    from audio_helpers import face_model

    seen = []
    scored = audio_model._cross_validate
    monkeypatch.setattr(audio_model, "CV_MAX_FRAMES", 300)
    monkeypatch.setattr(audio_model, "_cross_validate", lambda z, *rest: seen.append(len(z)) or scored(z, *rest))
    fm = face_model()
    audio, opening = talking(40.0, seed=1)
    alpha = np.zeros((len(opening), fm.num_expression))
    alpha[:, 0] = opening
    model = fit_audio_model([TrainingClip(audio, frame_times(len(opening), FPS), alpha, "talking")], fm)
    assert len(opening) > 600 and seen == [len(range(0, len(opening), -(-len(opening) // 300)))] and seen[0] <= 300
    assert len(model.support) == len(opening)
    held_audio, held_opening = talking(12.0, seed=7)
    predicted = model.expression(held_audio, frame_times(len(held_opening), FPS))
    assert np.corrcoef(predicted[:, 0], held_opening)[0, 1] > 0.8
