"""``dyntet preprocess VIDEO -o DATASET``: track a talking-head video into a dataset folder.

Resumable: every stage is cached in ``DATASET/.cache``; run the same command again after an
interruption (Ctrl-C stops cleanly after saving; a second Ctrl-C stops at once).
"""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path


def _fps(text: str) -> float | str:
    if text == "keep":
        return "keep"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fps takes a number or 'keep', got {text!r}") from None
    if not 1.0 <= value <= 240.0:
        raise argparse.ArgumentTypeError(f"--fps must be in 1..240, got {value:g}")
    return value


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("preprocess", help="turn a video of a talking person into a dataset folder",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", type=Path, help="the footage (mp4, mov, mkv, webm, mpg, …)")
    p.add_argument("-o", "--output", type=Path, required=True, help="dataset folder to write")
    p.add_argument("--size", type=int, default=512, help="side of the square head crops in pixels (default 512)")
    p.add_argument("--fps", type=_fps, default=25.0,
                   help="frame rate of the dataset, or 'keep' for the video's own (default 25)")
    p.add_argument("--max-seconds", type=float, metavar="S", help="use only the first S seconds")
    p.add_argument("--num-expression", type=int, metavar="K",
                   help="expression coefficients (default: chosen from the data, 32–64)")
    p.add_argument("--audio", type=Path, metavar="FILE",
                   help="a sound file recorded with the video (WAV, FLAC, MP3, …; starting at its first frame), "
                        "used instead of the video's own track")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true",
                   help="replace a dataset of another video already in the output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.cli import UserFacingError
    from dyntet.cli.progress_bar import ProgressBar
    from dyntet.face.native_log import native_stderr_silenced
    from dyntet.face.preprocess import PreprocessError, PreprocessOptions, preprocess
    from dyntet.progress import Cancelled

    try:
        options = PreprocessOptions(size=args.size, fps=args.fps, max_seconds=args.max_seconds,
                                    num_expression=args.num_expression)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from exc
    stop = {"asked": False}

    def on_interrupt(signum, frame):  # first Ctrl-C: stop after saving; second: stop now
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread (embedded use): Ctrl-C keeps its default behaviour
        previous = None
    try:
        with native_stderr_silenced(), ProgressBar(disable=True if args.quiet else None) as bar:
            out = preprocess(args.video, args.output, options, progress=bar, should_stop=lambda: stop["asked"],
                             force=args.force, audio=args.audio)
    except Cancelled:
        print(f"preprocessing stopped; run the same command again to resume "
              f"(dyntet preprocess {args.video} -o {args.output})")
        return 130
    except PreprocessError as exc:
        raise UserFacingError(str(exc)) from exc
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    report = json.loads((out / "report.json").read_text())
    frames, reproj, jitter = report["frames"], report["reprojection_px"]["smoothed"], report["jitter"]
    print(f"dataset written to {out}: {frames['kept']} frames ({frames['kept_frac']:.1%} of {frames['decoded']} "
          f"kept), reprojection {reproj['median']:.2f} px, jitter {jitter['smoothed_deg']['median']:.2f}° / "
          f"{jitter['smoothed_mm']['median']:.2f} mm per frame")
    audio = report.get("audio")
    if audio is not None:
        print(f"audio: {audio['seconds']:.1f} s at {audio['sample_rate']} Hz — the avatar can be driven by a voice")
        for note in audio.get("notes") or ():
            print(f"note: audio: {note}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    print(f"check {out / 'contact_sheet.png'} to see the tracking")
    return 0
