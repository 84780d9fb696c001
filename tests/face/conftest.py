"""Fixtures for the preprocessing tests (helpers live in ``face_clips.py``)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from face_clips import load_astronaut, face_patch, place, sway, write_video


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """uint8 [512, 512, 3] RGB portrait; skips when no copy is available."""
    image = load_astronaut()
    if image is None:
        pytest.skip("the astronaut photo (scikit-image or ../shared/data) is not available")
    return image


@pytest.fixture(scope="session")
def face_clip(astronaut, tmp_path_factory) -> pathlib.Path:
    """24 frames (25 fps) of the swaying astronaut, face ≈ 150 px in a 400² frame, with audio."""
    frame = place((400, 400), [(face_patch(astronaut, 150), (6, 0))])
    return write_video(tmp_path_factory.mktemp("clips") / "astronaut.mp4", sway(frame, 24), audio=True)


