"""The re-timed torso under a driven head: the shortest path, the soft cut-out, and the neck join."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dyntet.generate.torso import TorsoConfig, anchor_points, project, retime, soft_cutout

INTRINSICS = np.array([200.0, 200.0, 64.0, 64.0])
POINTS = np.array([[0.0, 0.0, 0.0], [0.0, -0.1, 0.02], [-0.07, 0.0, 0.0], [0.07, 0.0, 0.0]])


def _poses(xs: np.ndarray) -> np.ndarray:
    """Heads 0.6 m in front of the camera, shifted sideways by ``xs`` metres."""
    poses = np.tile(np.eye(4), (len(xs), 1, 1))
    poses[:, 0, 3] = xs
    poses[:, 2, 3] = -0.6
    return poses


def test_a_driver_that_replays_the_footage_gets_the_footage_back():
    footage = _poses(0.05 * np.sin(np.arange(40) / 4.0))
    assert retime(footage, footage[12:30], POINTS, INTRINSICS).tolist() == list(range(12, 30))


def test_the_path_is_the_cheapest_of_all_paths():
    rng = np.random.default_rng(0)
    footage, driven = _poses(rng.uniform(-0.05, 0.05, 4)), _poses(rng.uniform(-0.05, 0.05, 5))
    config = TorsoConfig(jump_cost_px=4.0, hold_cost_px=0.5)
    miss = np.linalg.norm(project(footage, POINTS, INTRINSICS)[None] - project(driven, POINTS, INTRINSICS)[:, None],
                          axis=-1).mean(-1)                                     # [T, N]

    def total(path):
        cost = sum(miss[t, i] for t, i in enumerate(path))
        for a, b in zip(path[:-1], path[1:]):
            cost += 0.0 if b == a + 1 else config.hold_cost_px if b == a else config.jump_cost_px
        return cost

    best = min(total(p) for p in itertools.product(range(4), repeat=5))
    assert total(retime(footage, driven, POINTS, INTRINSICS, config).tolist()) == pytest.approx(best)


def test_cuts_cost_more_than_small_misplacements():
    footage = _poses(np.linspace(-0.05, 0.05, 60))                             # the head drifts right
    driven = footage[20:40].copy()
    driven[:, 0, 3] += np.random.default_rng(1).normal(0, 0.003, 20)           # a jittery driver
    path = retime(footage, driven, POINTS, INTRINSICS)
    cuts = int((~np.isin(np.diff(path), (0, 1))).sum())                        # holds are no cuts
    nearest = np.linalg.norm(project(footage, POINTS, INTRINSICS)[None] - project(driven, POINTS, INTRINSICS)[:, None],
                             axis=-1).mean(-1).argmin(1)
    assert cuts <= 1 and int((~np.isin(np.diff(nearest), (0, 1))).sum()) >= 4  # greedy nearest would stutter


def test_soft_cutout_covers_the_head_grows_it_and_fades():
    head = torch.zeros(40, 40, 1)
    head[10:20, 10:20] = 1
    weight = soft_cutout(head, 2.0)[..., 0]
    assert (weight[10:20, 10:20] == 1).all() and (weight[8:22, 8:22] == 1).all()   # grown by 2 px
    row = weight[15, 20:30]
    assert (row[:-1] >= row[1:]).all() and 0 < row[3] < 1 and weight[15, 30] == 0 and weight[0, 0] == 0


def test_anchor_points_are_the_centroid_chin_and_cheeks():
    shape = np.array([[0, 1, 0], [0, -1, 0], [-2, 0, 0], [2, 0, 0.0]])
    np.testing.assert_allclose(anchor_points(shape), [[0, 0, 0], [0, -1, 0], [-2, 0, 0], [2, 0, 0]])


def test_another_persons_drive_renders_on_the_avatars_torso(run, other_subject, tmp_path):
    """The band just below the rendered head (the neck join) shows the footage's body, not the empty plate."""
    from dyntet.formats.dataset import MASK_TORSO
    from dyntet.generate.api import clip_windows, open_run, resolve_clip
    from dyntet.generate.drive import DriveOptions
    from dyntet.generate.geometry import FrozenGeometry
    from dyntet.generate.video import RenderConfig, footage_backdrop, to_linear, backdrop_frames, render_video

    video = render_video(run, tmp_path / "driven.mp4", RenderConfig(drive=str(other_subject)))
    assert video.stat().st_size > 0
    loaded = open_run(run, "cpu")
    clip = resolve_clip(loaded, str(other_subject), DriveOptions(), tmp_path / "x.mp4")
    poses = (clip.scene_to_camera[None] @ clip.head_to_scene.astype(np.float64)).astype(np.float32)
    frames = backdrop_frames(loaded.dataset, clip, poses, RenderConfig())
    assert frames.shape == (clip.num_frames,) and frames.min() >= 0
    assert int((np.diff(frames) != 1).sum()) <= clip.num_frames // 4            # mostly plays on
    geometry = FrozenGeometry.from_model(loaded.model)
    size = loaded.dataset.size
    windows = clip_windows(loaded, clip)
    plate = to_linear(loaded.dataset.background(), size, torch.device("cpu"))
    covered = []
    with torch.inference_mode():
        loaded.model.light.build()
        for t in range(0, clip.num_frames, 4):
            out = loaded.model.render(geometry.meshes(windows[t:t + 1]), windows[t:t + 1],
                                      torch.from_numpy(poses[t:t + 1]), torch.from_numpy(clip.intrinsics).float(),
                                      size, torch.zeros(1, size, size, 3))
            alpha = out.alpha[0, ..., 0] > 0.5
            rows, cols = np.nonzero(alpha.numpy())
            grown = torch.nn.functional.max_pool2d(alpha[None, None].float(), 7, 1, 3)[0, 0] > 0.5
            band = (grown & ~alpha).numpy()
            width = cols.max() - cols.min()
            band[: rows.max() - width // 8] = False                              # under the chin …
            band[:, : cols.min() + width // 4] = band[:, cols.max() - width // 4:] = False   # … at the neck
            backdrop = footage_backdrop(loaded.dataset, int(frames[t]), plate, size, RenderConfig().torso.feather_px)
            shows_body = ((backdrop - plate).abs().max(-1).values > 0.02).numpy()
            labels = loaded.dataset.mask(int(frames[t]))
            assert (labels[band] == MASK_TORSO).mean() > 0.5                    # the footage has a neck there …
            covered.append(shows_body[band].mean())                              # … and the cut-out leaves it
    covered = float(np.mean(covered))
    assert covered > 0.8, f"neck-join band showing the body instead of the plate: {covered:.2f}"


def test_soft_cutout_keeps_the_neck_below_the_chin():
    head = torch.zeros(40, 40, 1)
    head[5:30, 10:20] = 1                                 # head and neck, as the footage's mask has them
    weight = soft_cutout(head, 2.0, keep_below_row=20.0)[..., 0]
    assert (weight[5:21, 10:20] == 1).all()               # above the chin: cut out
    assert (weight[24:30, 10:20] == 0).all()              # the neck stays footage
    assert (weight[20:24, 15].diff() <= 0).all()
