"""Shared fixtures. Tests that read the team's reference footage skip when it is absent."""

from __future__ import annotations

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
REFERENCE_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def reference_data() -> pathlib.Path:
    """``../shared/data`` beside the checkout; skip when a user's checkout does not have it."""
    if not (REFERENCE_DATA / "footage").is_dir():
        pytest.skip("reference footage ../shared/data is not present")
    return REFERENCE_DATA
