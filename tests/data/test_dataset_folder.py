"""dyntet.formats.dataset: writing and reading dataset folders, and the errors users see."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dyntet.formats.dataset import (FORMAT, VERSION, Dataset, DatasetError, DatasetWriter, FaceModel, Tracking,
                                 split_ranges)

SIZE = 8


def _face_model(k: int = 2) -> FaceModel:
    rng = np.random.default_rng(0)
    return FaceModel(rng.normal(size=(4, 3)), rng.normal(size=(k, 4, 3)), np.array([[0, 1, 2], [0, 2, 3]]))


def _tracking(n: int, k: int = 2, landmarks: bool = False) -> Tracking:
    rng = np.random.default_rng(1)
    return Tracking(intrinsics=[10.0, 10.0, 4.0, 4.0], pose=np.tile(np.eye(4), (n, 1, 1)),
                    expression=rng.normal(size=(n, k)), frame_index=np.arange(n) * 2,
                    landmarks=rng.uniform(0, SIZE, (n, 5, 2)) if landmarks else None)


def _write(root: Path, n: int = 3, k: int = 2, landmarks: bool = False) -> Path:
    writer = DatasetWriter(root, SIZE, 30.0)
    rng = np.random.default_rng(2)
    for i in range(n):
        writer.write_frame(i, rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
                           rng.integers(0, 3, (SIZE, SIZE), dtype=np.uint8))
    writer.write_background(np.full((SIZE, SIZE, 3), 7, np.uint8))
    return writer.finish(_tracking(n, k, landmarks), _face_model(k), {"kind": "test"})


def test_round_trip_keeps_every_array_and_image(tmp_path: Path) -> None:
    root = _write(tmp_path / "ds", n=3, landmarks=True)
    data = Dataset.open(root)
    assert (data.num_frames, data.size, data.fps) == (3, SIZE, 30.0)
    assert data.manifest["format"] == FORMAT and data.manifest["version"] == VERSION
    assert data.manifest["num_expression"] == 2 and data.manifest["has_audio"] is False
    assert data.manifest["source"] == {"kind": "test"}
    expected = _tracking(3, landmarks=True)
    np.testing.assert_array_equal(data.tracking.pose, expected.pose)
    np.testing.assert_array_equal(data.tracking.expression, expected.expression)
    np.testing.assert_array_equal(data.tracking.frame_index, [0, 2, 4])
    np.testing.assert_array_equal(data.tracking.landmarks, expected.landmarks)
    np.testing.assert_array_equal(data.face_model.expression_basis, _face_model().expression_basis)
    rng = np.random.default_rng(2)
    for i in range(3):
        np.testing.assert_array_equal(data.frame(i), rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
        np.testing.assert_array_equal(data.mask(i), rng.integers(0, 3, (SIZE, SIZE), dtype=np.uint8))
    assert (data.background() == 7).all()
    assert data.audio_path is None


def test_landmarks_are_optional(tmp_path: Path) -> None:
    assert Dataset.open(_write(tmp_path / "ds")).tracking.landmarks is None


def test_face_model_shape_is_linear_in_expression() -> None:
    model = _face_model()
    alpha = np.array([0.5, -2.0])
    np.testing.assert_allclose(model.shape(alpha), model.mean_shape + 0.5 * model.expression_basis[0]
                               - 2.0 * model.expression_basis[1], rtol=1e-6)
    assert model.shape(np.zeros((7, 2))).shape == (7, 4, 3)


@pytest.mark.parametrize("n, train, test", [(2, (0, 1), (1, 2)), (11, (0, 10), (10, 11)), (220, (0, 200), (200, 220)),
                                            (21, (0, 20), (20, 21))])
def test_split_holds_out_the_last_eleventh(n: int, train: tuple, test: tuple) -> None:
    assert split_ranges(n) == (train, test)


def test_split_needs_two_frames() -> None:
    with pytest.raises(DatasetError, match="at least 2 frames"):
        split_ranges(1)


def test_missing_folder_and_missing_manifest_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.open(tmp_path / "nowhere")
    root = _write(tmp_path / "ds")
    (root / "manifest.json").unlink()
    with pytest.raises(DatasetError, match="no manifest.json"):
        Dataset.open(root)


def test_version_and_format_mismatch_are_refused(tmp_path: Path) -> None:
    root = _write(tmp_path / "ds")
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "version": VERSION + 1}))
    with pytest.raises(DatasetError, match=f"version {VERSION + 1}"):
        Dataset.open(root)
    (root / "manifest.json").write_text(json.dumps({**manifest, "format": "something-else"}))
    with pytest.raises(DatasetError, match="not a dyntet dataset"):
        Dataset.open(root)


def test_manifest_frame_count_must_match_tracking(tmp_path: Path) -> None:
    root = _write(tmp_path / "ds", n=3)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "num_frames": 4}))
    with pytest.raises(DatasetError, match="4 frames"):
        Dataset.open(root)


def test_rewriting_a_folder_removes_its_manifest_first(tmp_path: Path) -> None:
    root = _write(tmp_path / "ds")
    DatasetWriter(root, SIZE, 30.0)
    assert not (root / "manifest.json").exists()


def test_finish_checks_completeness_and_consistency(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path / "ds", SIZE, 25.0)
    writer.write_frame(0, np.zeros((SIZE, SIZE, 3), np.uint8), np.zeros((SIZE, SIZE), np.uint8))
    with pytest.raises(DatasetError, match="frames missing"):
        writer.finish(_tracking(2), _face_model(), {})
    writer.write_frame(1, np.zeros((SIZE, SIZE, 3), np.uint8), np.zeros((SIZE, SIZE), np.uint8))
    with pytest.raises(DatasetError, match="background.png missing"):
        writer.finish(_tracking(2), _face_model(), {})
    writer.write_background(np.zeros((SIZE, SIZE, 3), np.uint8))
    with pytest.raises(DatasetError, match="3 expression coefficients"):
        writer.finish(_tracking(2, k=3), _face_model(k=2), {})
    assert not (tmp_path / "ds" / "manifest.json").exists()
    writer.finish(_tracking(2), _face_model(), {})
    assert Dataset.open(tmp_path / "ds").num_frames == 2


def test_writer_rejects_wrong_image_shapes(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path / "ds", SIZE, 25.0)
    with pytest.raises(DatasetError, match="frame must be uint8"):
        writer.write_frame(0, np.zeros((SIZE, SIZE + 1, 3), np.uint8), np.zeros((SIZE, SIZE), np.uint8))
    with pytest.raises(DatasetError, match="mask must be uint8"):
        writer.write_frame(0, np.zeros((SIZE, SIZE, 3), np.uint8), np.zeros((SIZE, SIZE), np.float32))


def test_invalid_face_model_and_tracking_are_refused() -> None:
    with pytest.raises(DatasetError, match="triangles"):
        FaceModel(np.zeros((3, 3)), np.zeros((1, 3, 3)), np.array([[0, 1, 3]]))
    with pytest.raises(DatasetError, match="expression_basis"):
        FaceModel(np.zeros((3, 3)), np.zeros((1, 4, 3)), np.array([[0, 1, 2]]))
    with pytest.raises(DatasetError, match="expression must be"):
        Tracking([1, 1, 0, 0], np.tile(np.eye(4), (2, 1, 1)), np.zeros((3, 2)), np.arange(2))


def test_unknown_split_name(tmp_path: Path) -> None:
    data = Dataset.open(_write(tmp_path / "ds", n=3))
    assert list(data.split("all")) == [0, 1, 2] and list(data.split("test")) == [2]
    with pytest.raises(DatasetError, match="unknown split"):
        data.split("validation")
