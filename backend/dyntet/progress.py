"""Progress reports shared by every long operation (CLI progress bars, server events).

Long functions take ``progress: ProgressFn | None`` and ``should_stop: StopFn | None``; they call
``progress(Progress(...))`` now and then and return early (after saving their state) when
``should_stop()`` turns true.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass
class Progress:
    """One progress report of a long operation."""

    stage: str
    """What is running, e.g. ``"track"``, ``"train"``, ``"bake"``."""
    step: int
    """Units done so far in this stage."""
    total: int
    """Units in this stage (0 when unknown)."""
    message: str = ""
    """A short human-readable line."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Latest figures, e.g. losses."""
    eta_s: float | None = None
    """Estimated seconds until the stage ends."""
    preview: Path | None = None
    """Latest preview image written, if any."""


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


class Cancelled(Exception):
    """Raised inside a long operation when ``should_stop()`` said so and state has been saved."""
