"""Fixtures for the dataset and synthetic-subject tests: one small subject per seed, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from dyntet.data.synthetic import SyntheticConfig, make_subject

SMALL = dict(size=96, num_frames=24)
"""Small enough to build in a second or two, large enough for every split to be non-empty."""


@pytest.fixture(scope="session")
def small_kwargs() -> dict:
    """The :class:`SyntheticConfig` fields the small subjects share."""
    return dict(SMALL)


@pytest.fixture(scope="session")
def small_subject(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed 0, 96², 24 frames, astronaut texture."""
    return make_subject(tmp_path_factory.mktemp("subject0") / "ds", SyntheticConfig(seed=0, **SMALL))


@pytest.fixture(scope="session")
def small_subject_seed1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed 1, otherwise like :func:`small_subject`, with the procedural face texture."""
    return make_subject(tmp_path_factory.mktemp("subject1") / "ds",
                        SyntheticConfig(seed=1, texture="procedural", **SMALL))
