"""Fixtures of the audio tests."""

from __future__ import annotations

import numpy as np
import pytest

from audio_helpers import FPS, face_model, talking


@pytest.fixture(scope="module")
def model_and_truth():
    """An audio model fitted on 40 s of :func:`talking`, and a held-out recording with its truth."""
    from dyntet.audio.features import frame_times
    from dyntet.audio.model import TrainingClip, fit_audio_model

    fm = face_model()
    audio, opening = talking(40.0, seed=1)
    alpha = np.zeros((len(opening), fm.num_expression))
    alpha[:, 0] = opening
    alpha[:, 1:] = np.random.default_rng(2).normal(0, 0.05, (len(opening), fm.num_expression - 1))
    clip = TrainingClip(audio, frame_times(len(opening), FPS), alpha, "talking")
    model = fit_audio_model([clip], fm)
    held_audio, held_opening = talking(12.0, seed=7)
    return model, fm, alpha, held_audio, held_opening
