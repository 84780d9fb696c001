"""Training frames drawn by how rare their expression is (``rare_frame_power``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dyntet.data.landmark_regions import LEFT_EYE, LIPS, NUM_LANDMARKS, RIGHT_EYE
from dyntet.formats.dataset import FaceModel
from dyntet.train.config import TrainConfig
from dyntet.train.frame_sampling import MAX_RATIO, FrameSampler, frame_weights, regional_rarity


def _face_model(points: int = NUM_LANDMARKS) -> FaceModel:
    """Component 0 moves the lids, 1 the lips, 2 the whole face a little."""
    basis = np.zeros((3, points, 3), np.float32)
    if points == NUM_LANDMARKS:
        basis[0, list(RIGHT_EYE + LEFT_EYE), 1] = 0.004
        basis[1, list(LIPS), 1] = 0.004
    basis[2, :, 0] = 0.002
    return FaceModel(np.zeros((points, 3)), basis, np.array([[0, 1, 2]]))


def _clip(rng: np.random.Generator, frames: int = 200, blinks: int = 10) -> np.ndarray:
    """Talking frames (the lips and the face vary), of which ``blinks`` close the lids."""
    alpha = np.zeros((frames, 3))
    alpha[:, 1] = rng.uniform(0, 1, frames)
    alpha[:, 2] = rng.normal(0, 0.3, frames)
    alpha[:blinks, 0] = rng.uniform(0.9, 1.0, blinks)
    return alpha


def test_power_zero_keeps_the_uniform_draw_and_its_random_stream():
    alpha = _clip(np.random.default_rng(0))
    sampler = FrameSampler(_face_model(), alpha, 0.0)
    drawn = sampler.draw(5, torch.Generator().manual_seed(7))
    expected = torch.randint(0, len(alpha), (5,), generator=torch.Generator().manual_seed(7))
    assert torch.equal(drawn, expected)
    np.testing.assert_allclose(frame_weights(_face_model(), alpha, 0.0), 1 / len(alpha))


def test_blinks_are_drawn_more_often_though_the_whole_face_hardly_moves():
    face_model, alpha = _face_model(), _clip(np.random.default_rng(1))
    weights = frame_weights(face_model, alpha, 2.0)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[:10].sum() > 3 * 10 / len(alpha)      # ten blinks, drawn > 3× their uniform share
    draws = FrameSampler(face_model, alpha, 2.0).draw(20_000, torch.Generator().manual_seed(0)).numpy()
    assert np.mean(draws < 10) == pytest.approx(weights[:10].sum(), abs=0.01)
    assert weights.max() / weights.min() <= MAX_RATIO + 1e-9


def test_the_eyes_rarity_decides_where_the_whole_face_would_not():
    face_model, alpha = _face_model(), _clip(np.random.default_rng(2))
    rarity = regional_rarity(face_model, alpha)
    assert rarity[:10].min() > np.median(rarity[10:])
    whole_face_only = regional_rarity(_face_model(points=100), alpha)   # no MediaPipe points: no regions
    assert whole_face_only.shape == (len(alpha),) and np.isfinite(whole_face_only).all()


def test_a_negative_power_is_refused():
    with pytest.raises(ValueError, match="rare_frame_power"):
        TrainConfig(rare_frame_power=-1.0)


def test_a_run_trains_with_rarity_draws_and_records_the_setting(tiny_dataset, tmp_path):
    import json

    from dyntet.train.api import train
    from train_tiny import TINY

    run = train(tiny_dataset, tmp_path / "run", preset="preview", overrides={**TINY, "rare_frame_power": 2.0},
                device="cpu")
    assert json.loads((run / "config.json").read_text())["train"]["rare_frame_power"] == 2.0
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert len(metrics) == 6 and all(np.isfinite(m["loss"]) for m in metrics)
