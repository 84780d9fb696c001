"""``dyntet audio-fit RUN``: fit the avatar's audio → expression model (``RUN/audio_model.npz``).

``dyntet train`` fits it as its last stage when the footage has sound; run this to fit a run trained
without audio (after ``dyntet preprocess … --audio``) or to teach it from more footage of the same
person (``--with DATASET``, every frame of it; the run's test split is never used).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("audio-fit", help="fit the model that drives the avatar from a voice recording",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="the run folder (`dyntet train`)")
    p.add_argument("--with", dest="extra", type=Path, action="append", default=[], metavar="DATASET",
                   help="another preprocessed clip of the same person to learn from (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.audio.model import AUDIO_MODEL_FILE, AudioModelError
    from dyntet.audio.run_model import fit_run_audio
    from dyntet.cli import UserFacingError
    from dyntet.cli.progress_bar import ProgressBar

    try:
        with ProgressBar(disable=True if args.quiet else None) as bar:
            model = fit_run_audio(args.run, args.extra, progress=bar)
    except AudioModelError as exc:
        raise UserFacingError(str(exc)) from None
    summary = model.summary
    rms = summary["cv_lip_rms_best_m"] * 1000
    baseline = summary["cv_lip_rms_mean_expression_m"] * 1000
    print(f"audio model → {args.run / AUDIO_MODEL_FILE}: {summary['seconds']:.1f} s of speech, {summary['frames']} "
          f"frames from {', '.join(summary['clips'])}; held-out lip error {rms:.2f} mm (a still mouth: "
          f"{baseline:.2f} mm)")
    return 0
