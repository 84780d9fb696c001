"""Shared grids for the geometry tests.

The r = 128 grid comes from the real disk cache (``$DYNTET_CACHE_DIR`` or ``~/.cache/dyntet``): the first
run builds it (about 2 s), later runs load it in a tenth of a second.
"""

from __future__ import annotations

import pytest

from dyntet.geometry import TetGrid, build_tet_grid, tet_grid


@pytest.fixture(scope="session")
def grid128() -> TetGrid:
    return tet_grid(128)


@pytest.fixture(scope="session")
def grid8() -> TetGrid:
    return build_tet_grid(8)
