"""Install the pinned Khronos glTF Validator (npm ``gltf-validator``) into ``.tools/`` once.

Usage: ``python scripts/ensure_gltf_validator.py [--tools DIR]``. Re-runs are instant when the pinned
version is already there. Needs Node.js and npm on PATH and access to the npm registry the first time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dyntet.export.validate import GLTF_VALIDATOR_VERSION, ValidatorUnavailable, ensure_validator, tools_dir


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=Path, default=None, help=f"install folder (default {tools_dir()})")
    args = parser.parse_args(argv)
    try:
        package = ensure_validator(args.tools)
    except ValidatorUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"gltf-validator {GLTF_VALIDATOR_VERSION} ready in {package}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
