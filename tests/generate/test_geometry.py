"""The cached inference geometry agrees with the model's own decoding and keeps one topology."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dyntet.generate.geometry import FrozenGeometry, encode_expression
from dyntet.model.dyntet import expression_windows


@pytest.fixture(scope="module")
def deforming(loaded):
    """The trained avatar with f2's last layer and the elastic scores raised, so offsets reach millimetres
    and a mismatch in any term of Eq. 6 would show."""
    model = copy.deepcopy(loaded.model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        last = model.geometry.f2_rest.layers[-1]
        last.weight.copy_(torch.randn(last.weight.shape, generator=generator) * 0.5)
        model.geometry.f2_expression.weight.mul_(10.0)      # make the offsets depend strongly on α
        model.geometry.f1.layers[-1].bias[1] = 2.0          # elastic softplus(≈2) ≈ 2
    return model


def _windows(loaded, frames):
    expression = torch.from_numpy(loaded.dataset.tracking.expression)
    return expression_windows(expression, torch.as_tensor(frames), loaded.config.model.geometry.expression_window)


@pytest.mark.parametrize("smoothing_passes,atol", [(0, 2e-6), (8, 1e-5)])
def test_matches_dyntet_meshes(loaded, deforming, smoothing_passes, atol):
    """With smoothing, the model smooths in grid space and the cached path in head space: the same
    affine-invariant map, equal up to float32 rounding of the larger head-space values."""
    deforming = copy.deepcopy(deforming)
    deforming.config.geometry.smoothing_passes = smoothing_passes
    windows = _windows(loaded, [0, 7, 19, 33])
    with torch.no_grad():
        reference = deforming.meshes(windows)
    geometry = FrozenGeometry.from_model(deforming)
    vertices = geometry.vertices(windows)
    assert vertices.dtype == torch.float32 and vertices.shape == reference.vertices.shape
    motion = (reference.vertices - reference.canonical).norm(dim=-1).max().item()
    assert motion > 1e-3, "the test needs visible deformation (> 1 mm) to mean anything"
    np.testing.assert_allclose(vertices.numpy(), reference.vertices.numpy(), atol=atol, rtol=0)
    np.testing.assert_allclose(geometry.canonical.numpy(), reference.canonical.numpy(), atol=atol, rtol=0)
    assert torch.equal(geometry.faces, reference.faces)
    assert geometry.faces_int32().dtype == np.int32


def test_faces_do_not_depend_on_the_frame(loaded, geometry):
    """Re-deriving the topology from scratch for single frames gives the cached faces bit for bit."""
    for frame in (0, 21, 39):
        with torch.no_grad():
            meshes = loaded.model.meshes(_windows(loaded, [frame]))
        assert torch.equal(meshes.faces, geometry.faces)


def test_batching_and_chunking_do_not_change_results(loaded, deforming):
    geometry = FrozenGeometry.from_model(deforming)
    windows = _windows(loaded, np.arange(12))
    whole = geometry.vertices(windows)
    tiny_chunks = geometry.vertices(windows, max_rows=geometry.num_points)          # one frame per chunk
    batched = torch.cat(list(geometry.iter_vertices(windows, batch=5)))
    np.testing.assert_allclose(tiny_chunks.numpy(), whole.numpy(), atol=1e-6, rtol=0)
    # Batches of 5 take other float32 GEMM blockings than 12 frames at once: tens of ulps apart.
    scale = float(whole.abs().max())
    np.testing.assert_allclose(batched.numpy(), whole.numpy(), atol=1e-5 * scale, rtol=0)


def test_expression_encoder_as_gemm_matches_the_module(loaded):
    encoder = loaded.model.geometry.expression_encoder
    window = loaded.config.model.geometry.expression_window
    windows = torch.randn(5, window, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        np.testing.assert_allclose(encode_expression(encoder, windows).numpy(), encoder(windows).numpy(),
                                   atol=1e-5, rtol=1e-5)


def test_rejects_bad_windows_and_empty_surfaces(loaded, geometry):
    with pytest.raises(ValueError, match="windows must be"):
        geometry.vertices(torch.zeros(2, 3, 8))
    model = loaded.model
    with pytest.raises(ValueError, match="no surface"):
        FrozenGeometry.from_sdf(model, torch.ones(model.grid_vertices.shape[0]))
    with pytest.raises(ValueError, match="one value per grid vertex"):
        FrozenGeometry.from_sdf(model, torch.ones(5))


def test_matches_dyntet_meshes_with_face_motion(loaded, deforming):
    """With the face model's motion under f2, the cached path adds the same motion as the model, the
    canonical mesh is the one without it, and frames move by more than f2 alone moves them."""
    from dyntet.model.dyntet import DynTet

    def with_reach(reach_m: float) -> DynTet:
        config = copy.deepcopy(deforming.config)
        config.geometry.face_motion_reach_m = reach_m
        model = DynTet(config, loaded.dataset.face_model, deforming.mean_expression.numpy())
        model.load_state_dict(deforming.state_dict())
        return model

    deforming, moving = with_reach(0.0), with_reach(0.03)
    windows = _windows(loaded, [0, 7, 19, 33])
    with torch.no_grad():
        plain, reference = deforming.meshes(windows), moving.meshes(windows)
    geometry = FrozenGeometry.from_model(moving)
    np.testing.assert_allclose(geometry.vertices(windows).numpy(), reference.vertices.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(reference.canonical.numpy(), plain.canonical.numpy(), atol=1e-6, rtol=0)
    added = (reference.vertices - plain.vertices).norm(dim=-1).max().item()
    assert added > 1e-4, f"the face model's motion should move the mesh ({added * 1e3:.3f} mm)"
