"""``bench.py preprocess``: ``dyntet preprocess`` on ``../shared/data/footage/obama_b.mp4`` (30 s, 256²).

The whole pipeline with default options (512² crops, 25 fps) into a fresh temporary folder: probe,
locate, track, fit, frames and masks, background, audio, report.

Figures: ``frames_kept_frac`` (target ≥ 0.99), ``reproj_err_px_median`` (median over frames of the
per-frame median landmark reprojection error after smoothing, crop pixels at 512²; target ≤ 1.5),
``jitter_deg_median`` (median second difference of the smoothed head rotation, degrees per frame),
``wall_s`` (target ≤ 120 s on 2 cores), plus the raw (unsmoothed) jitter, the translation jitter, the
focal length, K and explained variance, per-stage timings and the machine's load average.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOOTAGE = REPO.parent / "shared" / "data" / "footage" / "obama_b.mp4"


def run() -> dict:
    from dyntet.face.preprocess import PreprocessOptions, preprocess

    if not FOOTAGE.exists():
        raise SystemExit(f"bench preprocess needs {FOOTAGE} (the team's reference footage)")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="dyntet-bench-preprocess-") as tmp:
        out = Path(tmp) / "obama_b"
        stages: dict[str, float] = {}
        start = time.perf_counter()

        def progress(report) -> None:
            if report.stage not in stages:
                stages[report.stage] = time.perf_counter() - start
                print(f"  {stages[report.stage]:6.1f} s  {report.stage}", flush=True)

        print(f"preprocessing {FOOTAGE.name} (load average {load_before:.1f})", flush=True)
        preprocess(FOOTAGE, out, PreprocessOptions(), progress=progress)
        wall = time.perf_counter() - start
        report = json.loads((out / "report.json").read_text())
    load_after = os.getloadavg()[0]
    figures = {
        "frames_kept_frac": report["frames"]["kept_frac"],
        "reproj_err_px_median": report["reprojection_px"]["smoothed"]["median"],
        "jitter_deg_median": report["jitter"]["smoothed_deg"]["median"],
        "wall_s": round(wall, 1),
        "frames": report["frames"]["kept"],
        "reproj_err_px_median_raw": report["reprojection_px"]["raw"]["median"],
        "jitter_deg_median_raw": report["jitter"]["raw_deg"]["median"],
        "jitter_mm_median": report["jitter"]["smoothed_mm"]["median"],
        "jitter_mm_median_raw": report["jitter"]["raw_mm"]["median"],
        "focal_px_crop": report["camera"]["intrinsics"][0],
        "fov_deg": report["camera"]["fov_deg"],
        "num_expression": report["face_model"]["num_expression"],
        "explained_variance": report["face_model"]["explained_variance"],
        "timings_s": report["timings_s"],
        "load_average": [round(load_before, 1), round(load_after, 1)],
    }
    print(f"kept {figures['frames_kept_frac']:.3f} of the frames (target ≥ 0.99)")
    print(f"reprojection {figures['reproj_err_px_median']:.2f} px median (raw {figures['reproj_err_px_median_raw']:.2f};"
          f" target ≤ 1.5)")
    print(f"jitter {figures['jitter_deg_median']:.2f}° / {figures['jitter_mm_median']:.2f} mm per frame "
          f"(raw {figures['jitter_deg_median_raw']:.2f}° / {figures['jitter_mm_median_raw']:.2f} mm)")
    print(f"wall {wall:.1f} s (target ≤ 120 s on 2 cores; load average {load_before:.1f} → {load_after:.1f})")
    return figures
