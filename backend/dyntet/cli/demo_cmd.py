"""``dyntet demo``: the whole pipeline on a synthetic subject, on this machine, in minutes.

Builds the synthetic talking head, trains the ``preview`` preset, evaluates on held-out frames, writes
an MP4 of held-out frames beside the ground truth and a few frames of the mesh sequence (OBJ).
Re-running reuses what is already there (the training resumes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dyntet.cli.progress_bar import ProgressBar
from dyntet.formats.run import RunFolder


DEMO_MINUTES = 4.0
"""Training budget of the demo: the synthetic subject needs ≈ 2600 preview steps, which fit in it."""

def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="synthetic subject → train → evaluate → video + meshes",
                              description=__doc__)
    p.add_argument("-o", "--output", type=Path, default=Path("demo_out"), help="folder for everything")
    p.add_argument("--iters", type=int, help="training iterations (default: as many as --minutes allow)")
    p.add_argument("--minutes", type=float, default=DEMO_MINUTES,
                   help=f"training time budget (default {DEMO_MINUTES:g}, so the demo stays within 10 minutes)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.formats.dataset import Dataset, DatasetError
    from dyntet.data.synthetic import SyntheticConfig, make_subject
    from dyntet.train.api import train
    from dyntet.train.evaluate import evaluate, load_run

    out = args.output
    dataset_dir, run_dir = out / "dataset", out / "run"
    try:
        Dataset.open(dataset_dir)
        print(f"[1/4] synthetic subject: reusing {dataset_dir}")
    except DatasetError:
        print(f"[1/4] synthetic subject → {dataset_dir}")
        with ProgressBar() as bar:
            make_subject(dataset_dir, SyntheticConfig(), progress=bar)

    print(f"[2/4] training the preview preset → {run_dir}")
    overrides = {"iterations": args.iters, "minutes": 0} if args.iters else {"minutes": args.minutes}
    resume = RunFolder(run_dir).has_checkpoint()
    with ProgressBar() as bar:
        train(dataset_dir, run_dir, preset="preview", overrides=overrides, device=args.device,
              resume=resume, progress=bar)

    print("[3/4] evaluating on held-out frames")
    loaded = load_run(run_dir, args.device)
    with ProgressBar() as bar:
        report = evaluate(loaded, "test", progress=bar)
    (out / "eval.json").write_text(json.dumps(report.to_dict(), indent=2))
    for key, value in report.mean().items():
        print(f"      {key:10s} {value:.4f}")

    print("[4/4] writing the held-out video and meshes")
    video = write_heldout_video(loaded, out / "heldout_vs_truth.mp4")
    meshes = write_mesh_frames(loaded, out / "meshes", count=5)
    print(f"\ndone. dataset {dataset_dir}\n      run     {run_dir} (preview.png, canonical.obj, metrics.jsonl)"
          f"\n      metrics {out / 'eval.json'}\n      video   {video}\n      meshes  {meshes}")
    return 0


def write_heldout_video(loaded, path: Path) -> Path:
    """Prediction | ground truth for every held-out frame, as an H.264 MP4."""
    import imageio.v2 as imageio

    from dyntet.train.evaluate import rendered_frames

    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=loaded.dataset.fps, codec="libx264", quality=8,
                            macro_block_size=16) as writer:
        for _, pred, gt, _, _ in rendered_frames(loaded, "test"):
            strip = np.concatenate([pred.cpu().numpy(), gt.cpu().numpy()], axis=1)
            writer.append_data((strip * 255 + 0.5).astype(np.uint8))
    return path


def write_mesh_frames(loaded, folder: Path, count: int) -> Path:
    """OBJ files of a few held-out frames: same faces, per-frame vertices (head space, metres)."""
    import torch

    from dyntet.model.dyntet import expression_windows
    from dyntet.train.trainer import obj_text

    folder.mkdir(parents=True, exist_ok=True)
    frames = list(loaded.dataset.split("test"))[:count]
    expression = torch.from_numpy(loaded.dataset.tracking.expression).to(loaded.model.grid_vertices.device)
    with torch.no_grad():
        windows = expression_windows(expression, torch.tensor(frames, device=expression.device),
                                     loaded.config.model.geometry.expression_window)
        meshes = loaded.model.meshes(windows)
    faces = meshes.faces.cpu().numpy()
    for frame, verts in zip(frames, meshes.vertices.cpu().numpy()):
        (folder / f"frame_{frame:05d}.obj").write_text(obj_text(verts, faces))
    return folder
