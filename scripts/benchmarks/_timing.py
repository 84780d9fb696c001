"""Timing and progress helpers shared by the benchmark modules (not a benchmark itself: the leading underscore keeps
it out of ``bench.py``'s list)."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Callable


def median_ms(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def training_progress(every: int):
    """A progress callback printing every ``every``-th step once (under a time budget the step is per
    mille and repeats over many iterations)."""
    printed: set[int] = set()

    def report(p) -> None:
        if p.step % every == 0 and p.step not in printed:
            printed.add(p.step)
            print(f"  {p.step}/{p.total} {p.message}", flush=True)

    return report


def each_run(measure: Callable[[Path], dict], needs: str = "a run trained on real footage, `dyntet train`") -> dict:
    """``measure`` of every run in ``DYNTET_BENCH_RUN`` (comma-separated); with several, keys are prefixed
    with the run folder's name."""
    runs = [Path(p) for p in os.environ.get("DYNTET_BENCH_RUN", "").split(",") if p]
    if not runs:
        raise SystemExit(f"set DYNTET_BENCH_RUN=/path/to/run ({needs})")
    if len(runs) == 1:
        return measure(runs[0])
    return {f"{r.name}_{k}": v for r in runs for k, v in measure(r).items()}
