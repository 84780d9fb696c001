"""``dyntet train DATASET -o RUN``: fit a DynTet avatar (resumable; Ctrl-C saves first)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dyntet.cli import UserFacingError
from dyntet.cli.progress_bar import ProgressBar
from dyntet.progress import Cancelled
from dyntet.train.config import PRESETS


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train an avatar on a dataset folder",
                              description=__doc__)
    p.add_argument("dataset", type=Path, nargs="?", help="dataset folder (optional with --resume)")
    p.add_argument("-o", "--output", type=Path, required=True, help="run folder to write")
    p.add_argument("--preset", choices=PRESETS, default="preview",
                   help="preview: minutes on a CPU; full: the paper's settings (GPU)")
    p.add_argument("--iters", type=int, help="number of iterations (overrides the preset)")
    p.add_argument("--minutes", type=float,
                   help="time budget: train for this long (the schedule is laid out over it; overrides the preset)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--force", action="store_true",
                   help="start again in a run folder that already holds a checkpoint (it is overwritten)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set model.geometry.grid_resolution=32 (JSON values, "
                        "checked against the setting's type)")
    p.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict:
    import json

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserFacingError(f"--set needs KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from dyntet.train.api import train
    from dyntet_formats.errors import FormatError

    if args.dataset is None and not args.resume:
        raise UserFacingError("give a DATASET folder (or --resume an existing run)")
    overrides = parse_overrides(args.set)
    if args.iters is not None:
        overrides["iterations"] = args.iters
    if args.minutes is not None:
        if args.minutes <= 0:
            raise UserFacingError("--minutes must be a positive number of minutes")
        overrides["minutes"] = args.minutes
    try:
        with ProgressBar() as bar:
            run_dir = train(args.dataset, args.output, preset=args.preset, overrides=overrides,
                            device=args.device, resume=args.resume, force=args.force, progress=bar)
    except Cancelled as exc:
        print(f"training stopped ({exc}); checkpoint saved — continue with: "
              f"dyntet train -o {args.output} --resume")
        return 130
    except KeyboardInterrupt:
        print(f"\ninterrupted; checkpoint saved — continue with: dyntet train -o {args.output} --resume")
        return 130
    except ValueError as exc:  # settings (unknown key, wrong type, a resume that would change them)
        if isinstance(exc, FormatError):
            raise
        raise UserFacingError(str(exc)) from exc
    print(f"run written to {run_dir}")
    return 0
