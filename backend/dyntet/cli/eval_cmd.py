"""``dyntet eval RUN``: held-out PSNR (full frame, head, mouth, eyes), SSIM, mask IoU, LPIPS when available,
the canonical mesh's faceting and how far the learnt deformation opens the mouth (``lip_motion_ratio``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dyntet.cli import UserFacingError
from dyntet.cli.progress_bar import ProgressBar


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a run on its held-out frames", description=__doc__)
    p.add_argument("run", type=Path, help="run folder")
    p.add_argument("--split", choices=("test", "train", "all"), default="test")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--json", action="store_true", help="print the full per-frame report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.formats.dataset import DatasetError
    from dyntet.train.evaluate import evaluate, load_run

    try:
        loaded = load_run(args.run, args.device)
    except (FileNotFoundError, DatasetError) as exc:
        raise UserFacingError(str(exc)) from exc
    with ProgressBar(disable=args.json) as bar:
        report = evaluate(loaded, args.split, progress=bar)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for key, value in report.mean().items():
            print(f"{key:10s} {value:.4f}")
    return 0
