"""A run trained with tinycudann's hash grid loads on the CPU, and the other way round."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dyntet.nn.encodings import HashGridConfig, HashGridEncoding
from dyntet.nn.grid_convert import (GridConversionError, adapt_state_dict, table_to_tcnn, tcnn_levels,
                                    tcnn_to_table)
from dyntet.nn.hashgrid_torch import grid_layout

ARGS = dict(levels=6, log2_table_size=12, base_resolution=4, max_resolution=64, input_dim=3)
F = 2


def _linear_params(weights: np.ndarray) -> np.ndarray:
    """tinycudann-layout params whose dense levels hold the linear field ``weights · x`` at their vertices."""
    blocks = []
    for t in tcnn_levels(**ARGS):
        block = np.zeros((t.entries, F), np.float32)
        if t.dense:
            side = t.resolution
            c = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:, ::-1]
            x = (c - 0.5) / t.scale                                # where tinycudann puts each vertex
            block[:len(x)] = x @ weights
        else:
            block[:] = np.random.default_rng(len(blocks)).normal(size=block.shape)
        blocks.append(block.reshape(-1))
    return np.concatenate(blocks)


def test_dense_levels_are_resampled_exactly_for_a_linear_field_and_hashed_levels_copied():
    weights = np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]], np.float32)
    params = _linear_params(weights)
    table = tcnn_to_table(params, F, **ARGS)
    ours = grid_layout(**ARGS)
    theirs = tcnn_levels(**ARGS)
    assert table.shape == (ours.total_entries, F)
    start = 0
    for level, t in enumerate(theirs):
        mine = table[ours.offsets[level]:ours.offsets[level] + ours.table_sizes[level]]
        if ours.dense[level] and t.dense:
            n = ours.resolutions[level]
            c = np.stack(np.meshgrid(*[np.arange(n + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)[:, ::-1]
            inside = ((c / n) * t.scale + 0.5 <= t.resolution - 1).all(axis=1)  # beyond: clamped at the border
            assert inside.mean() > 0.5
            np.testing.assert_allclose(mine[inside], (c / n)[inside] @ weights, atol=1e-5)
        elif not t.dense:
            np.testing.assert_array_equal(mine, params[start:start + t.entries * F].reshape(-1, F)[:len(mine)])
        start += t.entries * F
    assert any(ours.dense) and not all(ours.dense)  # the test exercises both kinds


def test_round_trip_keeps_a_linear_field_and_the_hashed_tables():
    weights = np.array([[0.3, 1.0], [-0.7, 0.2], [0.1, -0.4]], np.float32)
    table = tcnn_to_table(_linear_params(weights), F, **ARGS)
    back = tcnn_to_table(table_to_tcnn(table, **ARGS), F, **ARGS)
    ours, theirs = grid_layout(**ARGS), tcnn_levels(**ARGS)
    for level, t in enumerate(theirs):
        rows = slice(ours.offsets[level], ours.offsets[level] + ours.table_sizes[level])
        if not t.dense:
            np.testing.assert_array_equal(back[rows], table[rows])
            continue
        n = ours.resolutions[level]
        c = np.stack(np.meshgrid(*[np.arange(n + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)[:, ::-1] / n
        p = c * t.scale + 0.5
        interior = ((p >= 1) & (p <= t.resolution - 2)).all(axis=1)  # away from the clamped border
        assert interior.any()
        np.testing.assert_allclose(back[rows][interior], table[rows][interior], atol=1e-5)


def test_settings_that_differ_are_refused_with_a_sentence():
    params = _linear_params(np.ones((3, F), np.float32))
    with pytest.raises(GridConversionError, match="the run's settings differ"):
        tcnn_to_table(params[:-8], F, **ARGS)
    with pytest.raises(GridConversionError, match="the run's settings differ"):
        table_to_tcnn(np.zeros((10, F), np.float32), **ARGS)


def test_a_gpu_layout_state_dict_loads_into_a_cpu_encoding_and_evaluates_the_same_field():
    config = HashGridConfig(levels=ARGS["levels"], features_per_level=F, log2_table_size=ARGS["log2_table_size"],
                            base_resolution=ARGS["base_resolution"], max_resolution=ARGS["max_resolution"],
                            implementation="torch")
    holder = torch.nn.Module()
    holder.encoder = HashGridEncoding(config)
    weights = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    gpu_state = {"encoder.grid.encoding.params": torch.from_numpy(_linear_params(weights)), "other": torch.ones(2)}
    state, converted = adapt_state_dict(gpu_state, holder)
    assert converted == ["encoder"] and "encoder.grid.table" in state and torch.equal(state["other"], torch.ones(2))
    holder.load_state_dict({k: v for k, v in state.items() if k != "other"})
    x = torch.rand(200, 3) * 0.6 + 0.05
    features = holder.encoder(x).reshape(200, ARGS["levels"], F).detach().numpy()
    ours = grid_layout(**ARGS)
    for level in range(ARGS["levels"]):
        if ours.dense[level] and tcnn_levels(**ARGS)[level].dense:
            np.testing.assert_allclose(features[:, level], x.numpy() @ weights, atol=1e-4)
