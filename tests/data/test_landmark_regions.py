"""Mouth and eye boxes from MediaPipe landmarks: the index sets and the box geometry."""

from __future__ import annotations

import numpy as np
import pytest

from dyntet.data.landmark_regions import LEFT_EYE, LIPS, MARGIN, NUM_LANDMARKS, RIGHT_EYE, region_masks


def test_index_sets_are_mediapipes_contours():
    connections = pytest.importorskip("mediapipe.python.solutions.face_mesh_connections")
    for ours, theirs in ((LIPS, connections.FACEMESH_LIPS), (RIGHT_EYE, connections.FACEMESH_RIGHT_EYE),
                         (LEFT_EYE, connections.FACEMESH_LEFT_EYE)):
        assert set(ours) == {i for edge in theirs for i in edge}


def _landmarks() -> np.ndarray:
    points = np.full((NUM_LANDMARKS, 2), 100.0)           # everything else in the middle
    points[list(LIPS)] = np.stack([np.linspace(80, 120, len(LIPS)), np.linspace(150, 160, len(LIPS))], 1)
    points[list(RIGHT_EYE)] = np.stack([np.linspace(60, 80, len(RIGHT_EYE)), np.full(len(RIGHT_EYE), 90.0)], 1)
    points[list(LEFT_EYE)] = np.stack([np.linspace(120, 140, len(LEFT_EYE)), np.full(len(LEFT_EYE), 90.0)], 1)
    return points


def test_boxes_cover_the_contours_with_a_margin_and_scale_to_the_render():
    masks = region_masks(_landmarks(), source_size=200, size=100)   # rendered at half the crop's size
    mouth, eyes = masks["mouth"], masks["eyes"]
    pad = MARGIN * 20                                      # lips 40 px wide in the crop = 20 px rendered
    ys, xs = np.nonzero(mouth)
    assert xs.min() == np.floor(40 - pad) and xs.max() == np.ceil(60 + pad) - 1
    assert ys.min() == np.floor(75 - pad) and ys.max() == np.ceil(80 + pad) - 1
    assert eyes[45, 35] and eyes[45, 65] and not eyes[45, 50]       # two boxes, the nose bridge between
    assert not (mouth & eyes).any()


def test_frames_without_mediapipe_landmarks_have_no_regions():
    assert region_masks(np.zeros((68, 2)), 200, 100) is None
    broken = _landmarks()
    broken[5] = np.nan
    assert region_masks(broken, 200, 100) is None
