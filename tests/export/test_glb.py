"""The GLB container writer on its own: layout rules, lazy arrays, limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dyntet.export.glb import ARRAY_BUFFER, GlbBuilder, LazyArray, accessor_array, read_glb


def test_views_are_aligned_and_data_reads_back(tmp_path: Path) -> None:
    doc = GlbBuilder("test")
    a = doc.add_accessor(np.array([1, 2, 3], np.uint16), "SCALAR")                 # 6 bytes → padded to 8
    b = doc.add_accessor(np.array([[0.5, -1.0, 2.0]], np.float32), "VEC3", ARRAY_BUFFER, min_max=True)
    size = doc.write(tmp_path / "x.glb")
    data = (tmp_path / "x.glb").read_bytes()
    assert size == len(data) and size % 4 == 0
    gltf, binary = read_glb(data)
    assert [v["byteOffset"] for v in gltf["bufferViews"]] == [0, 8]
    assert gltf["buffers"] == [{"byteLength": 20}]
    assert accessor_array(gltf, binary, a).ravel().tolist() == [1, 2, 3]
    assert gltf["accessors"][b]["min"] == [0.5, -1.0, 2.0] and gltf["bufferViews"][1]["target"] == ARRAY_BUFFER
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed away


def test_lazy_arrays_are_checked(tmp_path: Path) -> None:
    doc = GlbBuilder("test")
    doc.add_accessor(LazyArray((4, 3), np.dtype(np.float32), lambda: np.zeros((2, 3), np.float32),
                               min=[0, 0, 0], max=[0, 0, 0]), "VEC3", min_max=True)
    with pytest.raises(RuntimeError, match="announced 48"):
        doc.write(tmp_path / "x.glb")
    assert not (tmp_path / "x.glb").exists() and not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="must carry them"):
        doc.add_accessor(LazyArray((1, 3), np.dtype(np.float32), lambda: np.zeros((1, 3), np.float32)),
                         "VEC3", min_max=True)


def test_glb_size_limit_is_reported_before_writing(tmp_path: Path) -> None:
    doc = GlbBuilder("test")
    never = LazyArray((2 ** 29, 3), np.dtype(np.float32), lambda: pytest.fail("must not produce data"))
    doc.add_accessor(never, "VEC3")  # 6 GiB announced
    with pytest.raises(ValueError, match="4 GiB"):
        doc.write(tmp_path / "x.glb")


def test_rejects_wrong_types() -> None:
    doc = GlbBuilder("test")
    with pytest.raises(ValueError, match="not a glTF component type"):
        doc.add_accessor(np.zeros(3, np.float64), "SCALAR")
    with pytest.raises(ValueError, match="VEC3 accessor needs 3"):
        doc.add_accessor(np.zeros((3, 2), np.float32), "VEC3")
    with pytest.raises(ValueError, match="not a glTF 2.0 binary"):
        read_glb(b"x" * 24)
