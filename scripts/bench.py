"""Benchmarks: ``python scripts/bench.py NAME`` (or ``all``).

Each NAME is a module ``scripts/benchmarks/<name with - as _>.py`` exposing ``run() -> dict``. It prints
human-readable lines as it goes; this script prints the returned figures as the last line of stdout,
one JSON object, so tools can parse it.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def available() -> list[str]:
    return sorted(p.stem.replace("_", "-") for p in (HERE / "benchmarks").glob("[a-z]*.py"))


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in available() + ["all"]:
        print(f"usage: bench.py NAME   (one of: {', '.join(available())}, all)", file=sys.stderr)
        return 2
    names = available() if argv[0] == "all" else argv
    figures: dict = {}
    for name in names:
        module = importlib.import_module(f"benchmarks.{name.replace('-', '_')}")
        result = module.run()
        figures.update(result if len(names) == 1 else {name: result})
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
