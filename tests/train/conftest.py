"""A tiny synthetic dataset and a tiny training configuration, shared by the training tests."""

from __future__ import annotations

import pytest

TINY = {
    "iterations": 6, "render_size": 64, "batch_size": 2, "face_samples": 256, "sdf_init_steps": 30,
    "checkpoint_every": 3, "preview_every": 3, "log_every": 1,
    "model.geometry.grid_resolution": 16, "model.geometry.hidden_dim": 16,
    "model.geometry.expression_feature_dim": 16, "model.geometry.expression_window": 9,
    "model.appearance.hash_levels": 4, "model.appearance.hash_log2_table": 10,
    "model.appearance.hash_max_resolution": 64, "model.appearance.hidden_dim": 16,
    "model.appearance.num_layers": 2, "model.light.cube_resolution": 8,
}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    from dyntet.data.synthetic import SyntheticConfig, make_subject

    out = tmp_path_factory.mktemp("synthetic") / "dataset"
    make_subject(out, SyntheticConfig(size=64, num_frames=24, seed=3))
    return out
