"""``dyntet generate RUN --drive SOURCE -o SEQ``: drive a trained avatar and write a sequence folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from dyntet.cli import UserFacingError

DRIVE_HELP = ("train, test or all (a split of the run's own clip), a dataset folder (another preprocessed clip: "
              "its expressions are carried onto this avatar), a video file (preprocessed first), an audio file "
              "(.wav, .flac, .mp3, .m4a, .ogg …: the voice drives the mouth through the run's audio model, the "
              "head moves as in the avatar's own clip), or a .csv of ARKit-named curves (Live Link Face layout; "
              "needs `dyntet rig RUN` first)")


def add_drive_arguments(p: argparse.ArgumentParser) -> None:
    """The options ``generate`` and ``render`` share: what drives the avatar and how."""
    p.add_argument("run", type=Path, help="run folder (from 'dyntet train')")
    p.add_argument("--drive", required=True, metavar="SOURCE", help=DRIVE_HELP)
    p.add_argument("--frames", metavar="A:B", help="half-open frame range within the driving split or clip, "
                                                   "e.g. 0:250 (either side may be empty)")
    p.add_argument("--pose", choices=("driver", "target"), default="driver",
                   help="head motion from the driving clip (default) or from the avatar's own clip")
    p.add_argument("--pose-cutoff-hz", type=float, default=4.0,
                   help="low-pass cutoff of the head motion in Hz (0: as tracked)")
    p.add_argument("--driver-dataset", type=Path, metavar="DIR",
                   help="where a driving video is preprocessed to (default: OUTPUT.driver beside the output)")
    p.add_argument("--audio-only", action="store_true",
                   help="drive from a video's sound track (its speech) instead of its face")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def drive_options(args: argparse.Namespace):
    """A :class:`~dyntet.generate.drive.DriveOptions` from the shared arguments (UserFacingError if invalid)."""
    from dyntet.generate.drive import DriveError, DriveOptions, FrameRange

    try:
        return DriveOptions(frames=FrameRange.parse(args.frames), pose=args.pose,
                            pose_cutoff_hz=args.pose_cutoff_hz, driver_dataset=args.driver_dataset,
                            audio_only=args.audio_only)
    except DriveError as exc:
        raise UserFacingError(str(exc)) from None


def print_audio_notes(source: dict) -> None:
    """What decoding the driving speech converted (rate, channels, 8-bit), one line each."""
    for note in source.get("audio_notes") or ():
        print(f"note: driving audio: {note}")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "generate", help="drive a trained avatar and write a sequence folder", description=__doc__,
        epilog="The sequence folder holds one topology, per-frame vertices and head poses, baked PBR textures, "
               "the learned light as an HDR, the driver's audio and metadata (docs/dataset-format.md). "
               "Export it with 'dyntet export SEQ' or import it in Blender.")
    add_drive_arguments(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="sequence folder to write")
    p.add_argument("--texture-size", type=int, default=1024, help="side of the baked textures in texels")
    p.add_argument("--environment-height", type=int, default=256,
                   help="rows of the equirectangular environment map (width is twice)")
    p.add_argument("--batch", type=int, default=16, help="frames decoded at once")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.cli.progress_bar import ProgressBar
    from dyntet.generate.api import GenerateConfig, GenerateError, generate
    from dyntet.generate.bake import BakeConfig
    from dyntet.formats.sequence import read_sequence
    from dyntet.progress import Cancelled

    try:
        config = GenerateConfig(drive=args.drive, drive_options=drive_options(args),
                                bake=BakeConfig(size=args.texture_size), environment_height=args.environment_height,
                                batch_frames=args.batch, device=args.device)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    try:
        with ProgressBar(disable=True if args.quiet else None) as bar:
            out = generate(args.run, args.output, config, progress=bar)
    except GenerateError as exc:
        raise UserFacingError(str(exc)) from None
    except Cancelled as exc:
        raise UserFacingError(f"cancelled: {exc}") from None
    seq = read_sequence(out)
    print_audio_notes(seq.source)
    audio = "with the driver's audio" if seq.audio is not None else "no audio"
    print(f"wrote {out}: {seq.num_frames} frames at {seq.fps:g} fps, {seq.num_vertices} vertices, "
          f"{seq.num_faces} faces, {seq.base_color.shape[0]}² textures, {audio}")
    return 0
