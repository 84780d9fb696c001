"""Fixtures for the generation tests: two synthetic subjects and one small avatar trained on the first.

Everything is built once per session. The avatar is small (grid 32, 80 iterations at 64², ≈ 30–60 s on
2 loaded cores) but trained: its appearance network has learned the subject's face (albedo varies by
≈ 0.2 across the head) and its f2 the face model's deformations, so baking and retargeting are tested on
real learned functions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generate_helpers import FPS, NUM_FRAMES, SMALL_RUN, add_audio, rig_to_face_model, single_thread


@pytest.fixture(scope="session")
def subject(tmp_path_factory) -> Path:
    """The avatar's synthetic subject (seed 3), with audio."""
    from dyntet.data.synthetic import SyntheticConfig, make_subject

    out = tmp_path_factory.mktemp("subject") / "dataset"
    with single_thread():
        make_subject(out, SyntheticConfig(size=64, num_frames=NUM_FRAMES, fps=FPS, seed=3))
    add_audio(out)
    return out


@pytest.fixture(scope="session")
def other_subject(tmp_path_factory) -> Path:
    """Another person (seed 11): a driver for cross-identity tests; its face model has other points."""
    from dyntet.data.synthetic import SyntheticConfig, make_subject

    out = tmp_path_factory.mktemp("other") / "dataset"
    with single_thread():
        make_subject(out, SyntheticConfig(size=64, num_frames=NUM_FRAMES, fps=FPS, seed=11))
    return out


@pytest.fixture(scope="session")
def run(subject, tmp_path_factory) -> Path:
    """A small avatar trained on :func:`subject`."""
    from dyntet.train.api import train

    out = tmp_path_factory.mktemp("run") / "run"
    with single_thread():
        train(subject, out, preset="preview", overrides=SMALL_RUN, device="cpu")
    return out


@pytest.fixture(scope="session")
def loaded(run):
    from dyntet.generate.api import open_run

    return open_run(run, "cpu")


@pytest.fixture(scope="session")
def geometry(loaded):
    from dyntet.generate.geometry import FrozenGeometry

    return FrozenGeometry.from_model(loaded.model)


@pytest.fixture(scope="session")
def jaw_index(subject) -> int:
    """Index of the rig's ``jaw_open`` control in α (the synthetic subject's ground truth names them)."""
    import numpy as np

    return list(np.load(subject / "synthetic_truth.npz")["controls"]).index("jaw_open")


@pytest.fixture(scope="session")
def jaw_run(run, jaw_index, tmp_path_factory) -> Path:
    """:func:`run` whose mesh opens its jaw exactly as its face model's jaw_open says (see the helper)."""
    with single_thread():
        return rig_to_face_model(run, tmp_path_factory.mktemp("jaw") / "run", [jaw_index])


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with single_thread():
        yield
