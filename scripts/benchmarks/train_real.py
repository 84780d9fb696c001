"""``bench.py train-real``: real footage end to end — preprocess, train the preview preset, evaluate.

On ``../shared/data/footage/obama_b.mp4`` (30 s, 256², 30 fps): ``dyntet preprocess`` at ``--size 256``
(the clip's own resolution; the preview preset renders at 256²), ``train`` with the ``preview``
preset on the CPU, ``evaluate`` on the dataset's test split (its last 1/11 of frames).

Figures: ``psnr_head_test``, ``psnr_mouth_test``, ``psnr_eyes_test``, ``ssim_test``, ``mask_iou_test``,
``faceting_deg`` (canonical mesh), ``lip_motion_ratio`` (how far the learnt deformation opens the
mouth against the tracking; 1 is all of it), ``wall_s`` (preprocess + train +
evaluate; the issue's target is head PSNR ≥ 30 dB within 20 minutes on 2 cores), plus the full-frame
PSNR, each stage's time and the machine's load average. ``DYNTET_BENCH_DIR`` keeps the dataset and run
(a rerun reuses the dataset but always trains from scratch); ``DYNTET_BENCH_ITERS`` trains that many
iterations instead of the preset's time budget, for a quick check; ``DYNTET_BENCH_FOOTAGE`` names
another clip (obama_a, reagan: the same command on other footage).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._timing import training_progress
from benchmarks.preprocess import FOOTAGE


def run() -> dict:
    from dyntet.face.preprocess import PreprocessOptions, preprocess
    from dyntet.train.api import train
    from dyntet.train.checkpoint import load_checkpoint
    from dyntet.train.evaluate import evaluate, load_run

    if not FOOTAGE.exists() and not os.environ.get("DYNTET_BENCH_FOOTAGE"):
        raise SystemExit(f"bench train-real needs {FOOTAGE} (the team's reference footage)")
    root = Path(os.environ.get("DYNTET_BENCH_DIR") or tempfile.mkdtemp(prefix="dyntet-bench-real-"))
    footage = Path(os.environ.get("DYNTET_BENCH_FOOTAGE") or FOOTAGE)
    dataset, run_dir = root / footage.stem, root / f"run-{footage.stem}"
    overrides = {"iterations": int(os.environ["DYNTET_BENCH_ITERS"]), "minutes": 0} \
        if os.environ.get("DYNTET_BENCH_ITERS") else {}
    load_before = os.getloadavg()[0]
    print(f"train-real in {root} (load average {load_before:.1f})", flush=True)

    started = time.perf_counter()
    preprocess(footage, dataset, PreprocessOptions(size=256))
    preprocess_s = time.perf_counter() - started
    print(f"preprocessed {footage.name} in {preprocess_s:.1f} s → {dataset}", flush=True)

    shutil.rmtree(run_dir, ignore_errors=True)
    started = time.perf_counter()
    train(dataset, run_dir, preset="preview", device="cpu", overrides=overrides, progress=training_progress(50))
    train_s = time.perf_counter() - started
    iterations = load_checkpoint(run_dir)["iteration"]

    started = time.perf_counter()
    report = evaluate(load_run(run_dir, "cpu"), "test")
    eval_s = time.perf_counter() - started
    mean = report.mean()
    wall = preprocess_s + train_s + eval_s
    load_after = os.getloadavg()[0]
    print(f"held-out ({len(report.frames)} frames): PSNR {mean['psnr']:.2f} dB, head PSNR "
          f"{mean['psnr_head']:.2f} dB, SSIM {mean['ssim']:.4f}, mask IoU {mean['mask_iou']:.4f}")
    print(f"wall {wall:.0f} s = preprocess {preprocess_s:.0f} + train {train_s:.0f} ({iterations} iterations) "
          f"+ eval {eval_s:.0f} (load average {load_before:.1f} → {load_after:.1f})")
    return {"psnr_head_test": round(mean["psnr_head"], 3), "psnr_test": round(mean["psnr"], 3),
            "ssim_test": round(mean["ssim"], 4), "mask_iou_test": round(mean["mask_iou"], 4),
            "wall_s": round(wall, 1), "preprocess_s": round(preprocess_s, 1), "train_s": round(train_s, 1),
            "eval_s": round(eval_s, 1), "iters": iterations, "test_frames": len(report.frames),
            "psnr_mouth_test": _rounded(mean.get("psnr_mouth"), 3), "psnr_eyes_test": _rounded(mean.get("psnr_eyes"), 3),
            "faceting_deg": _rounded(mean.get("faceting_deg"), 2),
            "lip_motion_ratio": _rounded(mean.get("lip_motion_ratio"), 3),
            "load_average": [round(load_before, 1), round(load_after, 1)]}


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
