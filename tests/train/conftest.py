"""A tiny synthetic dataset shared by the training tests (the tiny configuration is in train_tiny.py)."""

from __future__ import annotations

import pytest



@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    from dyntet.data.synthetic import SyntheticConfig, make_subject

    out = tmp_path_factory.mktemp("synthetic") / "dataset"
    make_subject(out, SyntheticConfig(size=64, num_frames=24, seed=3))
    return out
