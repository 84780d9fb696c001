"""Expression windows, the four geometry losses, and the Eq. 5 structure of the geometry network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dyntet.formats.dataset import FaceModel
from dyntet.model.config import GeometryConfig
from dyntet.model.dyntet import expression_windows
from dyntet.model.face_prior import HeadToGrid, sample_face
from dyntet.model.losses import deformation_loss, image_mse, mask_mse, normal_distance_loss
from dyntet.model.networks import ExpressionEncoder, GeometryNetwork


def test_expression_window_clamps_at_clip_edges():
    expression = torch.arange(10, dtype=torch.float32)[:, None].repeat(1, 2)  # frame i has α = (i, i)
    windows = expression_windows(expression, torch.tensor([0, 5, 9]), 5)
    assert windows.shape == (3, 5, 2)
    assert windows[0, :, 0].tolist() == [0, 0, 0, 1, 2]
    assert windows[1, :, 0].tolist() == [3, 4, 5, 6, 7]
    assert windows[2, :, 0].tolist() == [7, 8, 9, 9, 9]


@pytest.mark.parametrize("window", [1, 9, 27])
def test_expression_encoder_accepts_any_odd_window(window):
    encoder = ExpressionEncoder(num_expression=6, feature_dim=32)
    assert encoder(torch.randn(4, window, 6)).shape == (4, 32)


def _plane_face_model() -> FaceModel:
    """A 5×5 planar patch facing +Z with three smooth expression modes (metres): jaw, smile, pucker."""
    xs, ys = np.meshgrid(np.linspace(-0.05, 0.05, 5), np.linspace(-0.05, 0.05, 5))
    pts = np.stack([xs.ravel(), ys.ravel(), np.zeros(25)], 1)
    tris = []
    for r in range(4):
        for c in range(4):
            i = r * 5 + c
            tris += [[i, i + 1, i + 6], [i, i + 6, i + 5]]
    x, y, zero = pts[:, 0], pts[:, 1], np.zeros(25)
    basis = np.stack([np.stack([zero, -0.1 * np.maximum(-y, 0), zero], 1),
                      np.stack([0.1 * x * np.exp(-(y / 0.03) ** 2), zero, zero], 1),
                      np.stack([zero, zero, 0.05 * np.exp(-(x ** 2 + y ** 2) / 0.02 ** 2)], 1)])
    return FaceModel(pts, basis, np.array(tris))


def test_face_samples_lie_on_the_face_with_outward_normals():
    fm = _plane_face_model()
    to_grid = HeadToGrid(torch.zeros(3), 1 / 0.34)
    samples = sample_face(fm, np.zeros(3, np.float32), to_grid, 500, torch.Generator().manual_seed(0))
    assert samples.points.shape == (500, 3) and samples.basis.shape == (3, 500, 3)
    assert torch.allclose(samples.points[:, 2], torch.zeros(500), atol=1e-6)
    assert torch.allclose(samples.normals, torch.tensor([0.0, 0.0, 1.0]).expand(500, 3), atol=1e-5)
    assert samples.points[:, :2].abs().max() <= 0.05 / 0.34 + 1e-6


def test_motion_emphasis_draws_the_moving_triangles_more_often():
    from dyntet.model.face_prior import motion_emphasis

    fm = _plane_face_model()
    to_grid = HeadToGrid(torch.zeros(3), 1 / 0.34)
    delta = np.random.default_rng(0).normal(0, 1, (50, 3)) * [1.0, 0.0, 0.0]  # only the jaw-like mode moves
    emphasis = motion_emphasis(fm, delta, 4.0)
    moving = fm.expression_basis[0][fm.triangles].any(axis=(1, 2))            # triangles the mode displaces
    assert emphasis.shape == (len(fm.triangles),) and emphasis.min() >= 1.0
    assert emphasis[moving].min() > 1.0 and np.allclose(emphasis[~moving], 1.0)
    assert np.isclose(((emphasis - 1) / 4).mean(), 1.0)                        # normalised by the mean motion

    def share_on_moving(samples) -> float:  # fraction of samples on the half y < 0 that the mode moves
        return float((samples.points[:, 1] < 0).float().mean())

    plain = sample_face(fm, np.zeros(3, np.float32), to_grid, 4000, torch.Generator().manual_seed(0))
    weighted = sample_face(fm, np.zeros(3, np.float32), to_grid, 4000, torch.Generator().manual_seed(0), emphasis)
    assert share_on_moving(weighted) > share_on_moving(plain) + 0.15
    assert np.allclose(motion_emphasis(fm, np.zeros((5, 3)), 4.0), 1.0)         # a still face: area alone


def test_image_and_mask_losses_are_zero_at_optimum_and_positive_elsewhere():
    img = torch.rand(2, 8, 8, 3)
    mask = (torch.rand(2, 8, 8, 1) > 0.5).float()
    assert image_mse(img, img) == 0 and mask_mse(mask, mask) == 0
    assert image_mse(img, 1 - img) > 0 and mask_mse(mask, 1 - mask) == 1


def _fit(loss_fn, params, steps=150, lr=3e-3):
    opt = torch.optim.Adam(params, lr=lr)
    first = loss_fn().item()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    return first, loss_fn().item()


def test_normal_distance_loss_decreases_and_vanishes_for_an_exact_sdf():
    torch.manual_seed(0)
    fm = _plane_face_model()
    to_grid = HeadToGrid(torch.zeros(3), 1 / 0.34)
    samples = sample_face(fm, np.zeros(3, np.float32), to_grid, 512, torch.Generator().manual_seed(1))
    net = GeometryNetwork(GeometryConfig(hidden_dim=32, expression_feature_dim=16), num_expression=3)
    gen = torch.Generator().manual_seed(2)
    first, last = _fit(lambda: normal_distance_loss(net, samples, 0.1, gen), net.f1.parameters())
    assert last < 0.2 * first

    class PlaneSDF(torch.nn.Module):  # the exact signed distance of the plane z = 0 (normal +Z)
        def sdf_elastic(self, p):
            return p[:, 2], torch.zeros_like(p[:, 2])

    assert float(normal_distance_loss(PlaneSDF(), samples, 0.1, gen)) < 1e-12


def test_deformation_loss_is_learnt_against_an_equally_weighted_elastic_regulariser():
    torch.manual_seed(0)
    fm = _plane_face_model()
    to_grid = HeadToGrid(torch.zeros(3), 1 / 0.34)
    samples = sample_face(fm, np.zeros(3, np.float32), to_grid, 512, torch.Generator().manual_seed(1))
    net = GeometryNetwork(GeometryConfig(hidden_dim=32, expression_feature_dim=16), num_expression=3)
    alphas = torch.randn(8, 3)
    windows = alphas[:, None, :].expand(8, 27, 3)

    def losses():
        return deformation_loss(net, samples, net.expression_encoder(windows), alphas)

    with torch.no_grad():
        fdl0, _ = losses()
    # f2 starts at zero offsets, so the initial deformation loss is exactly the target's energy.
    target = torch.einsum("bk,knd->bnd", alphas, samples.basis)
    assert torch.isclose(fdl0, torch.mean(target ** 2))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(300):  # λ3 = λ4, as in the paper
        fdl, elastic = losses()
        opt.zero_grad()
        (fdl + elastic).backward()
        opt.step()
    with torch.no_grad():
        fdl, elastic = losses()
    assert fdl < 0.3 * fdl0, "expression deformation must be learnt despite the elastic regulariser"
    assert elastic < 1e-3, "the elastic scores stay small (rigid unless needed)"
    # zero at the optimum: at α = ᾱ the target vanishes and a fresh f2 (zero offsets) matches it exactly
    fresh = GeometryNetwork(GeometryConfig(hidden_dim=32, expression_feature_dim=16), num_expression=3)
    fdl_mean, _ = deformation_loss(fresh, samples, fresh.expression_encoder(torch.zeros(1, 27, 3)),
                                   torch.zeros(1, 3))
    assert float(fdl_mean.detach()) == 0.0
    # with the face model's own motion added under f2, a fresh f2 already meets the target exactly
    fdl_motion, _ = deformation_loss(fresh, samples, fresh.expression_encoder(windows), alphas, target)
    assert float(fdl_motion.detach()) == 0.0


def test_offsets_are_elastic_times_f2_and_first_layer_split_is_exact():
    torch.manual_seed(0)
    net = GeometryNetwork(GeometryConfig(hidden_dim=32, expression_feature_dim=16), num_expression=4)
    torch.nn.init.normal_(net.f2_rest.layers[-1].weight, std=0.1)
    pts = torch.rand(50, 3) - 0.5
    feat = torch.randn(3, 16)
    # the split first layer equals one Linear on the concatenation [γ(x), feature]
    full = torch.nn.Linear(net.encoding.output_dim + 16, 32)
    with torch.no_grad():
        full.weight.copy_(torch.cat([net.f2_position.weight, net.f2_expression.weight], 1))
        full.bias.copy_(net.f2_position.bias)
    enc = net.encoding(pts)
    concat = torch.cat([enc[None].expand(3, -1, -1), feat[:, None].expand(-1, 50, -1)], -1)
    expected = net.config.max_offset * torch.tanh(net.f2_rest(torch.relu(full(concat))))
    got = net.offsets(net.position_code(pts), feat)
    assert torch.allclose(got, expected, atol=1e-6)
    _, elastic = net.sdf_elastic(pts)
    assert (elastic >= 0).all()
