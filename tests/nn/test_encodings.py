"""Frequency encoding and multiresolution hash grid: values, layout, continuity, gradients, backends."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from dyntet.nn import encodings
from dyntet.nn.encodings import FrequencyEncoding, HashGridConfig, HashGridEncoding
from dyntet.nn.hashgrid_torch import PRIMES, TorchHashGrid

# -- frequency encoding ------------------------------------------------------------------------------


def test_frequency_encoding_values_at_known_points():
    enc = FrequencyEncoding(num_frequencies=2, include_input=True, input_dim=2)
    x = torch.tensor([[0.25, -0.5]])
    s = math.sqrt(0.5)
    # layout: [x, sin(πx), cos(πx), sin(2πx), cos(2πx)], each block holding both components
    expected = torch.tensor([[0.25, -0.5, s, -1.0, s, 0.0, 1.0, 0.0, 0.0, -1.0]])
    out = enc(x)
    assert enc.output_dim == 10
    assert out.shape == (1, 10)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_frequency_encoding_without_input_and_batch_shape():
    enc = FrequencyEncoding(num_frequencies=6, include_input=False)
    x = torch.rand(4, 5, 3)
    out = enc(x)
    assert out.shape == (4, 5, enc.output_dim) and enc.output_dim == 36
    # highest octave: sin(2^5 π x) of the first component
    torch.testing.assert_close(out[..., 30], torch.sin(32 * math.pi * x[..., 0]))


@pytest.mark.parametrize("kwargs", [dict(num_frequencies=-1), dict(num_frequencies=0, include_input=False),
                                    dict(input_dim=0)])
def test_frequency_encoding_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        FrequencyEncoding(**kwargs)


def test_frequency_encoding_rejects_wrong_input_width():
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        FrequencyEncoding()(torch.zeros(4, 2))


# -- hash grid: configuration and layout -------------------------------------------------------------


def test_layout_grows_geometrically_with_a_dense_prefix():
    layout = HashGridConfig().layout()
    res = layout.resolutions
    assert res[0] == 16 and res[-1] == 2048 and len(res) == 16
    ratios = [b / a for a, b in zip(res[:-1], res[1:])]
    assert all(1.3 < r < 1.45 for r in ratios)          # b = 128^(1/15) ≈ 1.38, floors perturb it
    dense = layout.dense
    assert dense == tuple(sorted(dense, reverse=True))  # dense levels come first
    for r, d, size in zip(res, dense, layout.table_sizes):
        assert size == ((r + 1) ** 3 if d else 2 ** 19)
        assert d == ((r + 1) ** 3 <= 2 ** 19)
    assert layout.offsets[0] == 0
    assert all(layout.offsets[i + 1] == layout.offsets[i] + layout.table_sizes[i] for i in range(15))


@pytest.mark.parametrize("kwargs", [dict(levels=0), dict(log2_table_size=3), dict(max_resolution=8),
                                    dict(input_dim=5), dict(implementation="cuda"), dict(features_per_level=0)])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="HashGridConfig"):
        HashGridConfig(**kwargs)


# -- hash grid: values against a slow reference ------------------------------------------------------


def reference_encoding(grid: TorchHashGrid, x: torch.Tensor) -> torch.Tensor:
    """Loop-per-point, per-level, per-corner evaluation of the hash encoding, written from the paper."""
    layout, table, d = grid.layout, grid.table.detach(), grid.input_dim
    out = torch.zeros(x.shape[0], len(layout.resolutions), table.shape[1], dtype=table.dtype)
    for p in range(x.shape[0]):
        for level, res in enumerate(layout.resolutions):
            scaled = [min(max(float(v), 0.0), 1.0) * res for v in x[p]]
            cell = [min(math.floor(s), res - 1) for s in scaled]
            frac = [s - c for s, c in zip(scaled, cell)]
            for corner in range(2 ** d):
                bits = [(corner >> (d - 1 - k)) & 1 for k in range(d)]
                vertex = [c + b for c, b in zip(cell, bits)]
                weight = math.prod(f if b else 1 - f for f, b in zip(frac, bits))
                if layout.dense[level]:
                    local = sum(v * (res + 1) ** k for k, v in enumerate(vertex))
                else:
                    h = 0
                    for k, v in enumerate(vertex):
                        h ^= (v * PRIMES[k]) % 2 ** 32
                    local = h % layout.table_sizes[level]
                out[p, level] += weight * table[layout.offsets[level] + local]
    return out.reshape(x.shape[0], -1)


@pytest.mark.parametrize("dim", [2, 3])
def test_torch_hash_grid_matches_reference(dim):
    torch.manual_seed(dim)
    grid = TorchHashGrid(levels=5, features_per_level=2, log2_table_size=8, base_resolution=3,
                         max_resolution=40, input_dim=dim)
    assert 0 < grid.layout.num_dense < 5                 # both storage kinds are exercised
    with torch.no_grad():
        grid.table.uniform_(-1, 1)
    x = torch.rand(40, dim)
    x[0] = 1.0                                            # the far corner of the cube
    x[1] = 0.0
    x[2, 0] = 1.7                                         # outside: clamped onto the cube
    torch.testing.assert_close(grid(x), reference_encoding(grid, x), atol=1e-5, rtol=1e-5)


def test_hash_grid_is_continuous_across_cell_boundaries():
    torch.manual_seed(0)
    enc = HashGridEncoding(HashGridConfig(levels=6, log2_table_size=10, base_resolution=4, max_resolution=64,
                                          implementation="torch"))
    with torch.no_grad():
        enc.grid.table.uniform_(-1, 1)
    # points on grid vertices of every level, approached from both sides
    on_vertex = torch.tensor([[k / res, 0.37, 0.61] for res in enc.grid.layout.resolutions
                              for k in range(1, res)])
    eps = 1e-5
    below = enc(on_vertex - torch.tensor([eps, 0, 0]))
    above = enc(on_vertex + torch.tensor([eps, 0, 0]))
    # Lipschitz bound of multilinear interpolation: |∂f/∂x| ≤ N_max · (max − min of the table)
    bound = 2 * eps * 64 * 2.0
    assert (below - above).abs().max() <= bound
    assert (below - above).abs().max() > 0               # and the field is not trivially constant


def test_small_input_change_gives_small_output_change():
    torch.manual_seed(1)
    enc = HashGridEncoding(HashGridConfig(implementation="torch"))
    with torch.no_grad():
        enc.grid.table.uniform_(-1, 1)
    x = torch.rand(2000, 3) * 0.98 + 0.01
    delta = 1e-6
    change = (enc(x + delta) - enc(x)).abs()
    assert change.max() <= 3 * delta * 2048 * 2.0 + 1e-5   # three axes moved, Lipschitz bound per axis


# -- hash grid: gradients ----------------------------------------------------------------------------


def test_gradients_reach_the_table_and_positions_and_match_finite_differences():
    torch.manual_seed(2)
    grid = TorchHashGrid(levels=3, features_per_level=2, log2_table_size=6, base_resolution=2,
                         max_resolution=12, input_dim=3).double()
    assert grid.layout.num_dense < 3                     # a hashed level is included
    with torch.no_grad():
        grid.table.uniform_(-1, 1)
    table = grid.table.detach().clone().requires_grad_()
    x = (torch.rand(7, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()

    def encode(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(grid, {"table": t}, (p,))

    assert torch.autograd.gradcheck(encode, (table, x), eps=1e-6, atol=1e-6)


def test_gradient_touches_only_the_entries_used():
    torch.manual_seed(3)
    enc = HashGridEncoding(HashGridConfig(levels=4, log2_table_size=12, base_resolution=4, max_resolution=32,
                                          implementation="torch"))
    x = torch.rand(1, 3) * 0.8 + 0.1
    enc(x).sum().backward()
    grad = enc.grid.table.grad
    touched = (grad.abs().sum(dim=1) > 0).sum().item()
    assert 0 < touched <= 4 * 8                          # at most 2^3 corners per level
    # each level's corner weights sum to one, so the gradient of the sum is 1 per level and feature
    torch.testing.assert_close(grad.sum(dim=0), torch.full((2,), 4.0))


# -- backends ----------------------------------------------------------------------------------------


def test_auto_picks_numba_without_cuda_and_logs_once(caplog, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; 'auto' may pick tinycudann")
    monkeypatch.setattr(encodings, "_announced", set())
    with caplog.at_level(logging.INFO, logger="dyntet.nn.encodings"):
        a = HashGridEncoding(HashGridConfig(levels=2, log2_table_size=8))
        b = HashGridEncoding(HashGridConfig(levels=2, log2_table_size=8))
    assert a.implementation == b.implementation == "numba"
    messages = [r.getMessage() for r in caplog.records if "hash grid" in r.getMessage()]
    assert len(messages) == 1 and "numba" in messages[0]


def test_explicit_tcnn_never_falls_back():
    if encodings.is_tcnn_available():
        pytest.skip("tinycudann is available here")
    with pytest.raises(RuntimeError, match="'tcnn' was requested"):
        HashGridEncoding(HashGridConfig(levels=2, implementation="tcnn"))


def test_encoding_shapes_and_input_validation():
    enc = HashGridEncoding(HashGridConfig(levels=3, features_per_level=4, log2_table_size=8, input_dim=2,
                                          implementation="torch"))
    assert enc(torch.rand(2, 5, 2)).shape == (2, 5, 12) and enc.output_dim == 12
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        enc(torch.rand(4, 3))


def test_empty_batches_pass_through():
    """A frame where the head covers no pixel gives zero points; encoders must not fail on it."""
    points = torch.zeros(0, 3, requires_grad=True)
    enc = HashGridEncoding(HashGridConfig(levels=3, log2_table_size=8, implementation="torch"))
    out = enc(points)
    assert out.shape == (0, 6)
    out.sum().backward()
    assert enc.grid.table.grad.abs().sum() == 0
    assert FrequencyEncoding(num_frequencies=6)(torch.zeros(0, 3)).shape == (0, 39)
