"""The eye and mouth boxes weigh more in the image loss when ``feature_weight`` asks for it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dyntet.data.landmark_regions import region_masks
from dyntet.formats.dataset import Dataset
from dyntet.model.losses import image_mse
from dyntet.train.config import TrainConfig
from dyntet.train.frames import FrameStore


def _with_landmarks(dataset: Dataset) -> np.ndarray:
    rng = np.random.default_rng(0)
    size = dataset.size
    landmarks = rng.uniform(0.3 * size, 0.7 * size, (dataset.num_frames, 478, 2)).astype(np.float32)
    dataset.tracking.landmarks = landmarks
    return landmarks


def test_the_store_carries_each_frames_eye_and_mouth_boxes(tiny_dataset):
    dataset = Dataset.open(tiny_dataset)
    landmarks = _with_landmarks(dataset)
    store = FrameStore(dataset, "train", 32, torch.device("cpu"), feature_boxes=True)
    batch = store.batch(torch.tensor([3, 0]))
    assert batch.features.shape == (2, 32, 32, 1)
    for row, frame in enumerate(batch.frames.tolist()):
        regions = region_masks(landmarks[frame], dataset.size, 32)
        np.testing.assert_array_equal(batch.features[row, ..., 0].numpy(), regions["eyes"] | regions["mouth"])
    assert 0 < float(batch.features.mean()) < 1
    assert FrameStore(dataset, "train", 32, torch.device("cpu")).batch(torch.tensor([0])).features is None


def test_without_mediapipe_landmarks_there_are_no_boxes(tiny_dataset):
    store = FrameStore(Dataset.open(tiny_dataset), "train", 32, torch.device("cpu"), feature_boxes=True)
    assert store.batch(torch.tensor([0])).features is None      # the synthetic subject has none


def test_weighted_image_loss_counts_box_pixels_one_plus_weight_times():
    generator = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 2, 8, 8, 3, generator=generator)
    boxes = torch.zeros(1, 8, 8, 1)
    boxes[:, 2:4, 2:6] = 1
    squared = (pred - target) ** 2
    inside, outside = float((squared * boxes).sum()), float((squared * (1 - boxes)).sum())
    weighted = image_mse(pred, target, 1.0 + 4.0 * boxes)
    assert float(weighted) == pytest.approx((5.0 * inside + outside) / squared.numel(), rel=1e-5)
    assert float(image_mse(pred, target, torch.ones(1, 8, 8, 1))) == pytest.approx(float(image_mse(pred, target)))


def test_a_negative_weight_is_refused():
    with pytest.raises(ValueError, match="feature_weight"):
        TrainConfig(feature_weight=-1.0)
