"""The ``dyntet`` console script: one module per subcommand.

Each module in ``SUBCOMMANDS`` exposes ``add_parser(subparsers)`` which registers its parser and
sets ``func`` (called with the parsed namespace, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

# Idle OpenMP threads sleep instead of spinning: on a 2-core machine shared with Blender, a server or
# a second job, spinning threads slow every parallel region many times over (measured: 7 s vs 0.2 s
# per training step). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SUBCOMMANDS = (
    "preprocess", "train", "eval", "generate", "render", "export", "serve", "cluster", "keys", "demo", "rig",
    "audio-fit",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dyntet", description="DynTet talking-head avatars: preprocess, train, generate, export, serve.")
    from dyntet import __version__
    parser.add_argument("--version", action="version", version=f"dyntet {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the full traceback of any error")
    parser.add_argument("--verbose", action="store_true",
                        help="let third-party libraries (MediaPipe, TensorFlow Lite) log to the terminal")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module_name = f"dyntet.cli.{name.replace('-', '_')}_cmd"
        if importlib.util.find_spec(module_name) is None:
            continue  # subcommand not part of this build
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ["DYNTET_VERBOSE"] = "1"
    else:  # what these libraries log before our code runs is not for our users
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserFacingError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from dyntet.failures import explain

        message = explain(exc)
        if message is None or args.debug:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


class UserFacingError(Exception):
    """An error whose message tells the user what went wrong and what to do; printed without a traceback."""


if __name__ == "__main__":
    sys.exit(main())
