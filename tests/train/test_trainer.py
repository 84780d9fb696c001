"""Training runs end to end on a tiny synthetic subject: files, checkpoints, resume, fixed topology."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from dyntet.model.dyntet import expression_windows
from dyntet.progress import Cancelled
from dyntet.train.api import train
from dyntet.train.checkpoint import load_checkpoint
from dyntet.train.evaluate import evaluate, load_run

from train_tiny import TINY


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_a_run_writes_config_checkpoint_metrics_preview_and_mesh(tiny_dataset, tmp_path):
    run = train(tiny_dataset, tmp_path / "run", preset="preview", overrides=TINY, device="cpu")
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["iterations"] == 6
    assert load_checkpoint(run)["iteration"] == 6
    assert [m["iteration"] for m in _metrics(run)] == [1, 2, 3, 4, 5, 6]
    assert all(torch.isfinite(torch.tensor(m["loss"])) for m in _metrics(run))
    assert (run / "preview.png").stat().st_size > 0
    obj = (run / "canonical.obj").read_text()
    assert obj.count("\nf ") > 100, "the canonical mesh should be a head, not empty"

    report = evaluate(load_run(run, "cpu"), "test")
    mean = report.mean()
    assert len(report.frames) == 2 and 0 < mean["psnr"] < 100 and 0 <= mean["mask_iou"] <= 1
    assert 0 < mean["faceting_deg"] < 90
    assert "psnr_mouth" not in mean                       # the synthetic subject has no MediaPipe landmarks


def test_eval_scores_the_mouth_and_eyes_boxes_of_the_tracked_landmarks(tiny_dataset, tmp_path):
    from dyntet.data.landmark_regions import region_masks
    from dyntet.train.evaluate import rendered_frames

    run = train(tiny_dataset, tmp_path / "run", preset="preview", overrides=TINY, device="cpu")
    loaded = load_run(run, "cpu")
    size = loaded.dataset.size
    rng = np.random.default_rng(0)
    landmarks = rng.uniform(0.3 * size, 0.7 * size, (loaded.dataset.num_frames, 478, 2)).astype(np.float32)
    loaded.dataset.tracking.landmarks = landmarks
    report = evaluate(loaded, "test")
    assert {"psnr_mouth", "psnr_eyes"} <= report.mean().keys()
    frame, pred, gt, _, _ = next(rendered_frames(loaded, "test"))
    mouth = torch.from_numpy(region_masks(landmarks[frame], size, pred.shape[0])["mouth"])
    expected = 10 * np.log10(1 / float(((pred[mouth] - gt[mouth]) ** 2).mean()))
    assert report.frames[0].frame == frame
    assert abs(report.frames[0].psnr_mouth - expected) < 1e-3
    assert abs(report.frames[0].psnr_mouth - report.frames[0].psnr) > 1e-3   # a region, not the frame


def test_all_frames_share_bit_identical_faces(tiny_dataset, tmp_path):
    run = train(tiny_dataset, tmp_path / "run", preset="preview", overrides=TINY, device="cpu")
    loaded = load_run(run, "cpu")
    expression = torch.from_numpy(loaded.dataset.tracking.expression)
    with torch.no_grad():
        together = loaded.model.meshes(expression_windows(expression, torch.arange(24), 9))
        faces = [loaded.model.meshes(expression_windows(expression, torch.tensor([i]), 9)).faces for i in (0, 7, 23)]
    assert together.vertices.shape[0] == 24
    assert all(torch.equal(f, together.faces) for f in faces)
    # the frames differ in their vertices (the expression moves the mesh) …
    assert not torch.equal(together.vertices[0], together.vertices[23])


def test_resume_continues_the_same_schedule_bit_for_bit(tiny_dataset, tmp_path):
    straight = train(tiny_dataset, tmp_path / "straight", preset="preview", overrides=TINY, device="cpu")
    calls = []

    def stop_after_three():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        train(tiny_dataset, tmp_path / "split", preset="preview", overrides=TINY, device="cpu",
              should_stop=stop_after_three)
    assert load_checkpoint(tmp_path / "split")["iteration"] == 3
    resumed = train(None, tmp_path / "split", resume=True, device="cpu")
    a, b = load_checkpoint(straight)["model"], load_checkpoint(resumed)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    assert [m["iteration"] for m in _metrics(resumed)] == [1, 2, 3, 4, 5, 6]


def test_kill_9_then_resume_loses_at_most_one_checkpoint_interval(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in {**TINY, "iterations": 400, "log_every": 1}.items()]
    cmd = [sys.executable, "-m", "dyntet.cli", "train", str(tiny_dataset), "-o", str(run), "--device", "cpu", *sets]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if (run / "metrics.jsonl").exists() and len(_metrics(run)) >= 8:
                break
            if proc.poll() is not None:
                pytest.fail(f"training exited early with code {proc.returncode}")
            time.sleep(0.2)
        else:
            pytest.fail("training made no progress")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    reached = _metrics(run)[-1]["iteration"]
    saved = load_checkpoint(run)["iteration"]
    assert reached - saved <= TINY["checkpoint_every"]
    done = subprocess.run([sys.executable, "-m", "dyntet.cli", "train", "-o", str(run), "--resume",
                           "--iters", str(saved + 3), "--device", "cpu"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(run)["iteration"] == saved + 3
    iterations = [m["iteration"] for m in _metrics(run)]
    assert iterations == list(range(1, saved + 4)), "metrics continue without gaps or duplicates"


def test_lip_motion_ratio_measures_how_far_the_deformation_opens_the_mouth(tiny_dataset, tmp_path):
    """1 when e·f2 at the inner-lip points is exactly the tracked motion, ½ at half of it, None on a face
    model that is not MediaPipe's (the synthetic subject's)."""
    from dyntet.formats.dataset import FaceModel
    from dyntet.train.evaluate import lip_motion_ratio

    run = train(tiny_dataset, tmp_path / "run", preset="preview", overrides=TINY, device="cpu")
    loaded = load_run(run, "cpu")
    assert lip_motion_ratio(loaded, "train") is None and "lip_motion_ratio" not in evaluate(loaded).mean()

    model, dataset = loaded.model, loaded.dataset
    k = dataset.face_model.num_expression
    rng = np.random.default_rng(1)
    basis = np.zeros((k, 478, 3), np.float32)
    basis[0, 14, 1] = -0.01                                   # α₀ drops the lower lip by 1 cm
    basis[1, 13, 1] = 0.004                                   # α₁ raises the upper lip
    mean_shape = rng.normal(0, 0.03, (478, 3)).astype(np.float32)
    mean_shape[[13, 14]] = [[0, 0.01, 0.05], [0, -0.01, 0.05]]   # lips 2 cm apart
    dataset.face_model = FaceModel(mean_shape, basis, np.array([[0, 13, 14]], np.int32))
    dataset.tracking.landmarks = np.zeros((dataset.num_frames, 478, 2), np.float32)
    dataset.tracking.expression = rng.normal(0, 0.3, dataset.tracking.expression.shape).astype(np.float32)
    scale = float(model.head_to_grid.scale)
    centre = loaded.config.model.geometry.expression_window // 2
    pair = torch.from_numpy(basis[:, [13, 14]] * scale)      # grid units per unit of α
    geometry = model.geometry

    class CentreFrameDelta(torch.nn.Module):  # the "feature" is the frame's α − ᾱ itself
        def forward(self, windows):
            return windows[:, centre] - model.mean_expression

    geometry.expression_encoder = CentreFrameDelta()
    for gain in (1.0, 0.5):
        geometry.sdf_elastic = lambda points: (points.new_zeros(len(points)), points.new_ones(len(points)))
        geometry.offsets = lambda code, features, gain=gain: gain * torch.einsum("bk,knd->bnd", features, pair)
        assert lip_motion_ratio(loaded, "train") == pytest.approx(gain, abs=0.01)
