"""``dyntet export SEQ --format glb|obj``: a sequence folder to a glTF binary or an OBJ sequence."""

from __future__ import annotations

import argparse
from pathlib import Path

from dyntet.cli import UserFacingError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a sequence folder to glTF binary (.glb) or per-frame OBJ", description=__doc__,
        epilog="glb rigs: 'per-frame' stores one morph target per frame (exact, large); 'pca' stores K blend "
               "shapes + per-frame weights (compact) and prints its RMS / max vertex error.")
    p.add_argument("sequence", type=Path, help="sequence folder (from 'dyntet generate')")
    p.add_argument("--format", choices=("glb", "obj"), default="glb", help="output format (default glb)")
    p.add_argument("-o", "--output", type=Path,
                   help="output file (glb) or new folder (obj); default: beside SEQ, named after it")
    p.add_argument("--rig", choices=("per-frame", "pca"), default="per-frame", help="glb morph-target rig")
    p.add_argument("--targets", type=int, metavar="K", help="pca: number of blend shapes (default: by tolerance)")
    p.add_argument("--tolerance-mm", type=float, default=0.5, help="pca: RMS vertex error allowed when picking K")
    p.add_argument("--max-error-mm", type=float, default=1.0,
                   help="pca: largest vertex error allowed when picking K (0 disables)")
    p.add_argument("--max-targets", type=int, default=128, help="pca: upper bound on K when picking by tolerance")
    p.add_argument("--morph-normals", action="store_true", help="glb: store normal deltas too (≈2× size)")
    p.add_argument("--no-head-pose", action="store_true",
                   help="leave head motion out (glb: no node animation; obj: positions stay in head space)")
    p.add_argument("--no-textures", action="store_true", help="leave the textures out")
    p.add_argument("--validate", action="store_true",
                   help="glb: run the Khronos glTF Validator afterwards "
                        "(needs Node; see scripts/ensure_gltf_validator.py)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.cli.progress_bar import ProgressBar
    from dyntet.export.gltf import GltfConfig, write_glb
    from dyntet.export.obj import ObjConfig, write_obj_sequence
    from dyntet.export.pca import PcaConfig
    from dyntet.formats.sequence import SequenceFormatError, read_sequence

    if args.format == "obj" and (args.rig != "per-frame" or args.targets is not None or args.morph_normals):
        raise UserFacingError("--rig, --targets and --morph-normals apply to --format glb only")
    if args.rig != "pca" and args.targets is not None:
        raise UserFacingError("--targets needs --rig pca")
    try:
        seq = read_sequence(args.sequence)
    except SequenceFormatError as exc:
        raise UserFacingError(str(exc)) from None
    source = args.sequence.resolve()
    try:
        with ProgressBar(disable=True if args.quiet else None) as bar:
            if args.format == "glb":
                out = args.output or source.with_name(f"{source.name}{'_pca' if args.rig == 'pca' else ''}.glb")
                pca = PcaConfig(num_targets=args.targets, tolerance_mm=args.tolerance_mm,
                                max_error_mm=args.max_error_mm or None, max_targets=args.max_targets)
                config = GltfConfig(rig=args.rig, pca=pca, morph_normals=args.morph_normals,
                                    animate_head_pose=not args.no_head_pose, textures=not args.no_textures)
                report = write_glb(out, seq, config, progress=bar)
            else:
                out = args.output or source.with_name(f"{source.name}_obj")
                config = ObjConfig(apply_head_pose=not args.no_head_pose, textures=not args.no_textures)
                paths = write_obj_sequence(out, seq, config, progress=bar)
    except (ValueError, FileExistsError) as exc:
        raise UserFacingError(str(exc)) from None
    if args.format == "obj":
        print(f"wrote {len(paths)} OBJ frames + head.mtl to {out}")
        return 0
    print(f"wrote {out}: {report.megabytes:.2f} MB, {report.num_targets} morph targets, "
          f"{report.num_vertices} vertices after UV-seam split, {seq.num_frames} frames at {seq.fps:g} fps")
    if report.pca is not None:
        print(f"pca rig: K={report.pca.num_targets}, RMS error {report.pca.rms_mm:.3f} mm, "
              f"max error {report.pca.max_mm:.3f} mm, variance kept {100 * report.pca.explained:.2f} %")
    if args.validate:
        return _validate(out)
    return 0


def _validate(path: Path) -> int:
    from dyntet.export.validate import ValidatorUnavailable, validate_glb

    try:
        result = validate_glb(path)
    except ValidatorUnavailable as exc:
        raise UserFacingError(str(exc)) from None
    print(f"glTF Validator: {result.summary()}")
    return 1 if result.num_errors else 0
