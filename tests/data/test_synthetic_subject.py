"""The synthetic subject as a dataset folder: format, masks, ground truth, determinism, video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dyntet.formats.dataset import MASK_BACKGROUND, MASK_HEAD, MASK_TORSO, Dataset
from dyntet.data.face_rig import RIG_CONTROLS
from dyntet.data.synthetic import TRUTH_FILE, SyntheticConfig, make_subject, render_video
from dyntet.geometry.mesh import edge_manifold_report
from dyntet.progress import Progress
from dyntet.render.camera import project_to_pixels


def _truth(root: Path) -> dict[str, np.ndarray]:
    with np.load(root / TRUTH_FILE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_folder_opens_with_the_documented_manifest(small_subject: Path) -> None:
    data = Dataset.open(small_subject)
    assert (data.num_frames, data.size, data.fps) == (24, 96, 25.0)
    assert data.manifest["num_expression"] == len(RIG_CONTROLS) == 8
    assert data.manifest["has_audio"] is False and data.audio_path is None
    assert data.manifest["source"]["kind"] == "synthetic" and data.manifest["source"]["seed"] == 0
    assert data.manifest["source"]["controls"] == list(RIG_CONTROLS)
    assert (list(data.split("train")), list(data.split("test"))) == (list(range(22)), [22, 23])
    assert data.frame(0).shape == (96, 96, 3) and data.frame(0).dtype == np.uint8
    assert data.mask(23).shape == (96, 96) and data.background().shape == (96, 96, 3)


def test_tracking_is_the_true_camera(small_subject: Path) -> None:
    tracking = Dataset.open(small_subject).tracking
    np.testing.assert_allclose(tracking.intrinsics, [1.6 * 96, 1.6 * 96, 48, 48])
    assert tracking.pose.shape == (24, 4, 4) and tracking.expression.shape == (24, 8)
    rot = tracking.pose[:, :3, :3].astype(np.float64)
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.tile(np.eye(3), (24, 1, 1)), atol=1e-6)
    assert np.all(tracking.pose[:, 2, 3] < -0.4)  # the head is in front of the camera (OpenGL: −Z)
    np.testing.assert_array_equal(tracking.frame_index, np.arange(24))


def test_masks_label_head_above_torso_over_the_backdrop(small_subject: Path) -> None:
    data = Dataset.open(small_subject)
    rows = np.arange(data.size)[:, None]
    for i in (0, 11, 23):
        mask = data.mask(i)
        assert set(np.unique(mask)) == {MASK_BACKGROUND, MASK_TORSO, MASK_HEAD}
        head, torso = mask == MASK_HEAD, mask == MASK_TORSO
        assert 0.15 < head.mean() < 0.5 and torso.mean() > 0.05
        assert (rows * torso).sum() / torso.sum() > (rows * head).sum() / head.sum() + 0.2 * data.size
        assert not head[-1].any() and torso[-1].any()  # shoulders run out of the frame, the head does not


def test_backdrop_pixels_are_the_plate_and_the_subject_is_not(small_subject: Path) -> None:
    data = Dataset.open(small_subject)
    plate = data.background().astype(int)
    for i in (0, 23):
        frame, mask = data.frame(i).astype(int), data.mask(i)
        free = mask == MASK_BACKGROUND
        # Away from silhouettes (antialiased there), the backdrop is exactly the plate.
        interior = free.copy()
        interior[1:] &= free[:-1]
        interior[:-1] &= free[1:]
        interior[:, 1:] &= free[:, :-1]
        interior[:, :-1] &= free[:, 1:]
        assert interior.sum() > 0.2 * free.size
        np.testing.assert_array_equal(frame[interior], plate[interior])
        head = mask == MASK_HEAD
        assert (np.abs(frame[head] - plate[head]).sum(-1) > 6).mean() > 0.9


def test_face_model_points_project_onto_head_pixels(small_subject: Path) -> None:
    data = Dataset.open(small_subject)
    model, tracking = data.face_model, data.tracking
    for i in (0, 12, 23):
        points = torch.from_numpy(model.shape(tracking.expression[i]))
        pixels = project_to_pixels(points, torch.from_numpy(tracking.pose[i]), torch.from_numpy(tracking.intrinsics))
        cols, rows = np.floor(pixels.numpy()).astype(int).T
        assert (cols.min(), rows.min()) >= (0, 0) and max(cols.max(), rows.max()) < data.size
        assert (data.mask(i)[rows, cols] == MASK_HEAD).mean() > 0.99


def test_truth_matches_face_model_and_tracking(small_subject: Path) -> None:
    data = Dataset.open(small_subject)
    truth = _truth(small_subject)
    n, v = 24, len(truth["neutral_vertices"])
    assert truth["head_vertices"].shape == (n, v, 3) and truth["head_vertices"].dtype == np.float32
    assert list(truth["controls"]) == list(RIG_CONTROLS)
    report = edge_manifold_report(torch.from_numpy(truth["head_faces"].astype(np.int64)))
    assert report.edge_manifold and report.consistently_oriented
    index = truth["face_model_vertex_index"]
    expected = data.face_model.shape(data.tracking.expression)
    np.testing.assert_allclose(truth["head_vertices"][:, index], expected, atol=1e-6)
    rebuilt = truth["neutral_vertices"] + np.tensordot(data.tracking.expression, truth["blend_shapes"], axes=([1], [0]))
    np.testing.assert_allclose(truth["head_vertices"], rebuilt, atol=1e-6)


def test_same_seed_gives_identical_folders(small_subject: Path, small_kwargs: dict, tmp_path: Path) -> None:
    again = make_subject(tmp_path / "again", SyntheticConfig(seed=0, **small_kwargs))
    for name in ("background.png", "frames/000000.png", "frames/000017.png", "masks/000017.png", "face_model.npz"):
        assert (again / name).read_bytes() == (small_subject / name).read_bytes(), name
    a, b = Dataset.open(again).tracking, Dataset.open(small_subject).tracking
    np.testing.assert_array_equal(a.pose, b.pose)
    np.testing.assert_array_equal(a.expression, b.expression)


def test_different_seeds_give_different_people_and_clips(small_subject: Path, small_subject_seed1: Path) -> None:
    a, b = _truth(small_subject), _truth(small_subject_seed1)
    assert np.abs(a["neutral_vertices"] - b["neutral_vertices"]).max() > 0.002
    da, db = Dataset.open(small_subject), Dataset.open(small_subject_seed1)
    assert np.abs(da.tracking.expression - db.tracking.expression).max() > 0.05
    assert np.abs(da.background().astype(int) - db.background().astype(int)).mean() > 5
    assert db.manifest["source"]["texture"] == "procedural"


def test_video_has_every_frame(small_subject: Path, tmp_path: Path) -> None:
    import imageio_ffmpeg

    out = render_video(small_subject, tmp_path / "clip.mp4")
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = reader.__next__()
    assert tuple(meta["size"]) == (96, 96) and meta["fps"] == pytest.approx(25.0)
    frames = [np.frombuffer(f, np.uint8).reshape(96, 96, 3) for f in reader]
    assert len(frames) == 24
    first = Dataset.open(small_subject).frame(0).astype(float)
    assert np.abs(frames[0] - first).mean() < 6.0  # lossy, but the same picture


def test_progress_reports_reach_the_total(tmp_path: Path) -> None:
    reports: list[Progress] = []
    make_subject(tmp_path / "ds", SyntheticConfig(size=48, num_frames=6), progress=reports.append)
    assert reports and reports[-1].step == reports[-1].total == 6
    assert all(r.stage == "synthetic" for r in reports)


@pytest.mark.parametrize("bad, match", [(dict(size=95), "even"), (dict(num_frames=1), "at least 2"),
                                        (dict(texture="photo"), "texture"), (dict(light_space="world"), "light_space"),
                                        (dict(face_model_level=5), "face_model_level")])
def test_config_rejects_bad_values(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SyntheticConfig(**bad)


def test_light_space_decides_whether_shading_turns_with_the_head() -> None:
    from dyntet.data.face_texture import background_plate
    from dyntet.data.synthetic import build_subject
    from dyntet.data.synthetic_render import SubjectRenderer
    from dyntet.data.talking_motion import rotation_matrix

    config = SyntheticConfig(size=64, num_frames=2)
    subject = build_subject(config)
    plate = background_plate(64, np.random.default_rng(0))
    turned = config.rest_pose()
    turned[:3, :3] = rotation_matrix(np.radians(10.0), 0.0, 0.0)
    poses = np.stack([config.rest_pose(), turned])
    verts = subject.head_vertices([0, 0])
    head_rgb, labels = SubjectRenderer(subject, "procedural", config.intrinsics, 64, plate, "head").render(verts, poses)
    room_rgb, _ = SubjectRenderer(subject, "procedural", config.intrinsics, 64, plate, "camera").render(verts, poses)
    np.testing.assert_allclose(head_rgb[0], room_rgb[0], atol=1e-6)  # at rest both frames agree
    head = labels[1] == MASK_HEAD
    assert np.abs(head_rgb[1] - room_rgb[1])[head].mean() > 0.005  # turned: the room's light moves over the face
