"""Timing and progress helpers shared by the benchmark modules (not a benchmark itself: the leading underscore keeps
it out of ``bench.py``'s list)."""

from __future__ import annotations

import statistics
import time
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
