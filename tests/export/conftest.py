"""Fixtures for the sequence-folder and exporter tests: small synthetic heads (fast) built once."""

from __future__ import annotations

import pytest

from dyntet.export.synthetic import SyntheticHeadConfig, synthetic_sequence
from dyntet.formats.sequence import Sequence


def small_sequence(num_frames: int = 6, **overrides) -> Sequence:
    """A few-hundred-vertex synthetic head: every optional field filled."""
    config = SyntheticHeadConfig(num_frames=num_frames, rings=12, segments=16, texture_size=32,
                                 environment_height=8, **overrides)
    return synthetic_sequence(config)


@pytest.fixture
def seq() -> Sequence:
    return small_sequence()


@pytest.fixture
def make_seq():
    """The :func:`small_sequence` factory, for tests that need other lengths or options."""
    return small_sequence


@pytest.fixture
def blender():
    """The ``bpy`` module, with every object, mesh, material and action created by the test removed afterwards
    (other suites share the module, so no factory reset)."""
    bpy = pytest.importorskip("bpy")
    collections = ("objects", "meshes", "materials", "images", "actions", "shape_keys", "cameras")
    before = {name: set(getattr(bpy.data, name)) for name in collections}
    fps = bpy.context.scene.render.fps
    frame = bpy.context.scene.frame_current
    yield bpy
    bpy.context.scene.render.fps = fps
    bpy.context.scene.frame_set(frame)
    for name in collections:
        data = getattr(bpy.data, name)
        for block in set(data) - before[name]:
            if name != "shape_keys":  # keys go with their mesh
                data.remove(block)
