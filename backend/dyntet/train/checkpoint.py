"""Checkpoints: tensors and plain numbers only, written atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dyntet.data.atomic import atomic_path

CHECKPOINT_NAME = "last.pt"


def checkpoint_path(run: Path) -> Path:
    return Path(run) / "checkpoints" / CHECKPOINT_NAME


def save_checkpoint(run: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (state dicts, ints, floats, tensors) so a crash never leaves a torn file."""
    path = checkpoint_path(run)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(run: Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The latest checkpoint of ``run``, or None when there is none yet."""
    path = checkpoint_path(run)
    if not path.exists():
        return None
    return torch.load(path, map_location=map_location, weights_only=True)
