"""``dyntet render RUN --drive SOURCE -o out.mp4``: a video of the neural avatar with the driver's audio."""

from __future__ import annotations

import argparse
from pathlib import Path

from dyntet.cli import UserFacingError
from dyntet.cli.generate_cmd import add_drive_arguments, drive_options


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "render", help="render a driven avatar to an MP4 video", description=__doc__,
        epilog="Frames are the avatar's own neural rendering from its training camera, on the avatar's own "
               "torso (footage frames re-timed to follow the driven head); H.264 + AAC.")
    add_drive_arguments(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="video file to write (.mp4)")
    p.add_argument("--size", type=int, help="side of the square video in pixels (even; default: the dataset's)")
    p.add_argument("--background", choices=("torso", "plate", "footage"), default="torso",
                   help="torso (default): the avatar's footage re-timed to the driven head motion, so the head "
                        "sits on its own shoulders; plate: the empty background (a floating head); footage: "
                        "the replayed frames themselves (only when replaying train, test or all)")
    p.add_argument("--quality", type=float, default=8.0, help="H.264 quality 0-10, 10 best (default 8)")
    p.add_argument("--batch", type=int, default=2, help="frames rendered at once")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.cli.progress_bar import ProgressBar
    from dyntet.generate.api import GenerateError
    from dyntet.generate.video import RenderConfig, render_video
    from dyntet.progress import Cancelled

    try:
        config = RenderConfig(drive=args.drive, drive_options=drive_options(args), size=args.size,
                              background=args.background,
                              batch_frames=args.batch, quality=args.quality, device=args.device)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    try:
        with ProgressBar(disable=True if args.quiet else None) as bar:
            out = render_video(args.run, args.output, config, progress=bar)
    except GenerateError as exc:
        raise UserFacingError(str(exc)) from None
    except Cancelled as exc:
        raise UserFacingError(f"cancelled: {exc}") from None
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0
