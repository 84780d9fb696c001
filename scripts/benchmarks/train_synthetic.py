"""``bench.py train-synthetic``: the preview preset on the synthetic subject, held-out quality and time.

Builds the default synthetic subject (cached in a temp folder per run), trains the ``preview`` preset
from scratch on the CPU, evaluates the held-out (test) frames.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks._timing import training_progress


def run() -> dict:
    from dyntet.data.synthetic import SyntheticConfig, make_subject
    from dyntet.train.api import train
    from dyntet.cli.demo_cmd import DEMO_MINUTES
    from dyntet.train.checkpoint import load_checkpoint
    from dyntet.train.evaluate import evaluate, load_run

    root = Path(os.environ.get("DYNTET_BENCH_DIR") or tempfile.mkdtemp(prefix="dyntet-bench-"))
    dataset = root / "synthetic"
    if not (dataset / "manifest.json").exists():
        started = time.perf_counter()
        make_subject(dataset, SyntheticConfig())
        print(f"synthetic subject built in {time.perf_counter() - started:.1f} s → {dataset}")
    started = time.perf_counter()
    run_dir = train(dataset, root / "run", preset="preview", device="cpu", overrides={"minutes": DEMO_MINUTES},
                    progress=training_progress(100))
    wall = time.perf_counter() - started
    iterations = load_checkpoint(run_dir)["iteration"]
    report = evaluate(load_run(run_dir, "cpu"), "test")
    mean = report.mean()
    print(f"held-out: PSNR {mean['psnr']:.2f} dB, head PSNR {mean['psnr_head']:.2f} dB, "
          f"SSIM {mean['ssim']:.4f}, mask IoU {mean['mask_iou']:.4f} over {len(report.frames)} frames")
    print(f"training: {iterations} iterations in {wall:.1f} s (includes the SDF initialisation)")
    return {"psnr_head_test": round(mean["psnr_head"], 3), "psnr_test": round(mean["psnr"], 3),
            "ssim_test": round(mean["ssim"], 4), "mask_iou_test": round(mean["mask_iou"], 4),
            "iters": iterations, "wall_s": round(wall, 1), "s_per_iter": round(wall / iterations, 3)}
