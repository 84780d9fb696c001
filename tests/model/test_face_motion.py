"""The face model's motion carried into the grid: each lip keeps its own motion, and it fades with distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dyntet.formats.dataset import FaceModel
from dyntet.model.face_motion import FaceMotionField, GridFaceMotion, motion_offsets
from dyntet.model.face_prior import HeadToGrid

SCALE = 1.0 / 0.34  # grid units per metre, as the preview grid


def _strip(y0: float, y1: float, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.linspace(-0.03, 0.03, n), np.linspace(y0, y1, n // 3))
    points = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], 1)
    tris = []
    for j in range(n // 3 - 1):
        for i in range(n - 1):
            a, b, c, d = j * n + i, j * n + i + 1, (j + 1) * n + i, (j + 1) * n + i + 1
            tris += [[a, b, d], [a, d, c]]
    return points, np.array(tris)


@pytest.fixture(scope="module")
def lips() -> FaceModel:
    """Two lips 4 mm apart with no triangle across the slit: coefficient 0 lifts the upper lip by 1 cm
    per unit, coefficient 1 drops the lower lip."""
    upper, upper_tris = _strip(0.002, 0.012)
    lower, lower_tris = _strip(-0.012, -0.002)
    points = np.concatenate([upper, lower])
    basis = np.zeros((2, len(points), 3))
    basis[0, :len(upper), 1] = 0.01
    basis[1, len(upper):, 1] = -0.01
    return FaceModel(points, basis, np.concatenate([upper_tris, lower_tris + len(upper)]))


def _field(lips: FaceModel, reach_m: float = 0.03) -> FaceMotionField:
    return FaceMotionField(lips, np.zeros(2), HeadToGrid(torch.zeros(3), SCALE), reach_m)


def test_each_lip_keeps_its_own_motion(lips):
    """Points 1 mm above and below the slit take their own lip's basis, not a blend that keeps the
    mouth shut (the failure of a smooth f2)."""
    field = _field(lips)
    above = np.array([[0.0, 0.003, 0.0]]) * SCALE
    below = np.array([[0.0, -0.003, 0.0]]) * SCALE
    up, down = field.basis_at(above)[0], field.basis_at(below)[0]
    np.testing.assert_allclose(up[0], [0.0, 0.01 * SCALE, 0.0], atol=1e-3 * SCALE)
    np.testing.assert_allclose(down[1], [0.0, -0.01 * SCALE, 0.0], atol=1e-3 * SCALE)
    assert abs(up[1, 1]) < 1e-3 * SCALE and abs(down[0, 1]) < 1e-3 * SCALE


def test_motion_fades_with_distance_from_the_face(lips):
    """Full motion within a third of the reach, none beyond it, monotone in between."""
    field = _field(lips, reach_m=0.03)
    depths = np.array([0.0, 0.005, 0.015, 0.025, 0.031, 0.2])
    points = np.stack([np.zeros_like(depths), np.full_like(depths, 0.007), -depths], 1) * SCALE
    lift = field.basis_at(points)[:, 0, 1] / (0.01 * SCALE)
    np.testing.assert_allclose(lift[:2], 1.0, atol=1e-3)
    assert 0.0 < lift[3] < lift[2] < 1.0
    np.testing.assert_allclose(lift[4:], 0.0, atol=1e-6)
    assert field.within_reach(points).tolist() == [True] * 4 + [False] * 2


def test_grid_table_matches_the_field_and_is_zero_out_of_reach(lips):
    field = _field(lips, reach_m=0.02)
    generator = torch.Generator().manual_seed(0)
    vertices = torch.rand(3000, 3, generator=generator) - 0.5
    table = GridFaceMotion(field, vertices)
    index = torch.arange(len(vertices))
    np.testing.assert_allclose(table.gather(index).numpy(), field.basis_at(vertices.numpy()), atol=1e-6)
    far = np.linalg.norm(vertices.numpy() / SCALE, axis=1) > 0.06   # metres: > 2 cm from every lip point
    assert table.gather(index).abs().max() > 0
    assert far.any() and table.gather(index[torch.from_numpy(far)]).abs().max() == 0
    delta = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    offsets = motion_offsets(table.gather(index), delta)
    assert offsets.shape == (2, 3000, 3) and offsets[1].abs().max() == 0   # ᾱ moves nothing


def test_reach_must_be_positive(lips):
    with pytest.raises(ValueError, match="reach"):
        _field(lips, reach_m=0.0)
