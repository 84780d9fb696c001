"""A built-in job that checks a backend can run jobs end to end, with a known answer.

It estimates the largest eigenvalue of a fixed symmetric positive-definite matrix by power iteration
— a short CPU workload — reporting progress each step, checkpointing its state atomically every few
steps into ``OUT/selftest_checkpoint.npz`` and resuming from it. The answer is checked against
``numpy.linalg.eigvalsh``. Because every step is deterministic, an interrupted and resumed run ends
with exactly the same numbers as an uninterrupted one. The add-on's "Test backend" button and the
server's tests use it; ``fail_at`` / ``fail_with`` inject the failures a real job can have.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from dyntet.formats.atomic import atomic_path, write_json_atomic
from dyntet.progress import Cancelled, Progress, ProgressFn, StopFn

CHECKPOINT_NAME = "selftest_checkpoint.npz"
RESULT_NAME = "selftest_result.json"

FailureMode = Literal["error", "memory", "crash", "abort"]


@dataclass(frozen=True)
class SelftestConfig:
    steps: int = 50
    """Power-iteration steps."""
    step_s: float = 0.05
    """Pause per step (seconds), so the job lasts long enough to watch, cancel or kill."""
    size: int = 64
    """Side of the matrix."""
    checkpoint_every: int = 10
    """Steps between checkpoints."""
    seed: int = 0
    fail_at: int | None = None
    """Step at which to fail on a fresh (not resumed) run; None never fails."""
    fail_with: FailureMode = "error"
    """``error``: raise RuntimeError · ``memory``: raise MemoryError · ``crash``: SIGKILL itself
    (what the OOM killer does) · ``abort``: ``os.abort()`` (a native crash)."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.size < 1 or self.checkpoint_every < 1:
            raise ValueError(f"steps, size and checkpoint_every must be ≥ 1, got {self}")
        if not 0 <= self.step_s <= 60:
            raise ValueError(f"step_s must be in [0, 60], got {self.step_s}")
        if self.fail_with not in ("error", "memory", "crash", "abort"):
            raise ValueError(f"fail_with must be error, memory, crash or abort, got {self.fail_with!r}")


def matrix(config: SelftestConfig) -> np.ndarray:
    """The fixed SPD matrix, float64 [size, size]: a random rotation of eigenvalues 2 (once) and
    [0.5, 1] (the rest), so power iteration gains a factor 2 per step and converges in ~30 steps."""
    rng = np.random.default_rng(config.seed)
    q, _ = np.linalg.qr(rng.standard_normal((config.size, config.size)))
    eigenvalues = np.concatenate([[2.0], rng.uniform(0.5, 1.0, config.size - 1)])
    return (q * eigenvalues) @ q.T


def run_selftest(out: Path, config: SelftestConfig, *, resume: bool = False, progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None) -> dict:
    """Run (or with ``resume`` continue) the selftest in folder ``out``; returns the result map
    (also written to ``OUT/selftest_result.json``). Raises ``Cancelled`` after checkpointing when
    ``should_stop()`` turns true."""
    out.mkdir(parents=True, exist_ok=True)
    a = matrix(config)
    x = np.full(config.size, 1.0 / np.sqrt(config.size))
    step = resumed_from = 0
    checkpoint = out / CHECKPOINT_NAME
    if resume and checkpoint.is_file():
        with np.load(checkpoint, allow_pickle=False) as saved:
            step, x = int(saved["step"]), saved["x"].astype(np.float64)
        resumed_from = step
    start = time.monotonic()
    while step < config.steps:
        if should_stop is not None and should_stop():
            _save(checkpoint, step, x)
            raise Cancelled(f"selftest stopped at step {step}")
        if config.fail_at == step and not resume:
            _fail(config.fail_with, step)
        y = a @ x
        x = y / np.linalg.norm(y)
        step += 1
        if config.step_s:
            time.sleep(config.step_s)
        if step % config.checkpoint_every == 0:
            _save(checkpoint, step, x)
        if progress is not None:
            elapsed = time.monotonic() - start
            done = step - resumed_from
            progress(Progress("selftest", step, config.steps, f"power iteration {step}/{config.steps}",
                              {"eigenvalue": float(x @ a @ x)},
                              eta_s=elapsed / done * (config.steps - step) if done else None))
    _save(checkpoint, step, x)
    expected = float(np.linalg.eigvalsh(a)[-1])
    estimate = float(x @ a @ x)
    result = {"steps": step, "resumed_from": resumed_from, "eigenvalue": estimate, "expected": expected,
              "relative_error": abs(estimate - expected) / expected, "pid": os.getpid()}
    write_json_atomic(out / RESULT_NAME, result)
    return result


def _save(path: Path, step: int, x: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, step=np.int64(step), x=x)


def _fail(mode: FailureMode, step: int) -> None:
    if mode == "error":
        raise RuntimeError(f"selftest failure requested at step {step}")
    if mode == "memory":
        raise MemoryError(f"selftest out-of-memory requested at step {step}")
    if mode == "crash":
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
        time.sleep(10)
    os.abort()


def read_result(out: Path) -> dict | None:
    path = out / RESULT_NAME
    return json.loads(path.read_text()) if path.is_file() else None
