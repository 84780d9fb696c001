"""Run a numba kernel on several cores with plain threads (the CPU rasterizer's only parallelism).

Why not ``numba.prange``: numba's OpenMP layer uses the system libgomp while torch bundles its own, and
two OpenMP runtimes whose idle workers spin-wait fight over the cores whenever the renderer alternates
between a numba kernel and a torch op. On the 2-core development machine under load that made
``rasterize`` 5–50× slower than with one thread (worse the busier the machine). Kernels here are
``@njit(nogil=True)`` and are handed disjoint task numbers from a small thread pool: idle pool threads
block instead of spinning, results stay deterministic (each task owns its outputs), and concurrent
calls from several Python threads are safe. The number of tasks follows ``torch.get_num_threads()``,
the one knob users already turn for CPU parallelism.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import torch

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


def num_workers() -> int:
    """Threads a kernel may use: torch's intra-op thread count (at least 1)."""
    return max(1, torch.get_num_threads())


def run_tasks(kernel: Callable[..., None], num_tasks: int, *args) -> None:
    """Call ``kernel(task, num_tasks, *args)`` for every task in ``range(num_tasks)``, concurrently.

    Task 0 runs in the calling thread, the others in the pool. The kernel must release the GIL
    (``@njit(nogil=True)``) and write only outputs that its task owns.
    """
    if num_tasks <= 1:
        kernel(0, 1, *args)
        return
    futures = [_executor(num_tasks - 1).submit(kernel, task, num_tasks, *args) for task in range(1, num_tasks)]
    kernel(0, num_tasks, *args)
    for future in futures:
        future.result()


def _executor(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < size:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="dyntet-raster")
            _pool_size = size
        return _pool
