"""``dyntet rig RUN``: fit the named expression controls of an avatar (``RUN/controls.npz``) and their
shape keys (``RUN/control_keys.npz``); later ``generate`` runs then write ``SEQ/controls.npz``.

With ``--curves-out CSV`` the training clip's measured control curves are written too (Live Link Face
layout), ready to edit and drive with ``dyntet generate RUN --drive CSV``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rig", help="fit ARKit-named expression controls (jawOpen, eyeBlinkLeft, …) to a trained avatar",
        description="Measure named controls on the run's training clip (tracked landmarks, head space) and fit "
                    "their map to the expression coefficients; writes RUN/controls.npz.")
    parser.add_argument("run", type=Path, help="the run folder (`dyntet train`)")
    parser.add_argument("--ridge", type=float, default=1e-3, help="regularisation per frame (default 1e-3)")
    parser.add_argument("--curves-out", type=Path, metavar="CSV",
                        help="also write the training clip's control curves to this CSV")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.cli import UserFacingError
    from dyntet.formats.dataset import Dataset, DatasetError
    from dyntet.rig.controls import ControlsError
    from dyntet.rig.curves import Curves, CurvesFormatError, write_curves
    from dyntet.rig.fit import CONTROLS_FILE, clip_points, fit_run_controls

    try:
        control_map = fit_run_controls(args.run, args.ridge)
        print(f"{len(control_map.names)} controls → {args.run / CONTROLS_FILE} "
              f"(α fit RMS {control_map.fit_rms:.3f})")
        from dyntet.generate.api import GenerateError, open_run
        from dyntet.rig.sequence_rig import KEYS_FILE, build_run_keys

        try:
            keys = build_run_keys(open_run(args.run, "cpu"), control_map)
        except GenerateError as exc:
            raise UserFacingError(str(exc)) from None
        print(f"basis + {len(keys.names)} shape keys fitted to the training clip → {args.run / KEYS_FILE}")
        if args.curves_out is not None:
            import json
            dataset = Dataset.open(json.loads((args.run / "config.json").read_text())["dataset"])
            frames = dataset.split("train")
            values = control_map.controls(clip_points(dataset, frames))
            write_curves(args.curves_out, Curves(control_map.names, values, dataset.fps))
            print(f"{len(values)} frames of curves → {args.curves_out}")
    except (ControlsError, CurvesFormatError, DatasetError, OSError) as exc:
        raise UserFacingError(str(exc)) from None
    return 0
