"""Checkpoints: tensors and plain numbers only, written atomically, loaded with ``weights_only=True``.

Where the file lives is :mod:`dyntet.formats.run`'s business; a file that cannot be read (cut short,
corrupt, from an unknown version) and a disk that cannot take a new one are errors naming the file.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from dyntet.formats.atomic import atomic_path
from dyntet.formats.run import RunFolder, RunFolderError


def checkpoint_path(run: Path) -> Path:
    return RunFolder(run).checkpoint_path


def save_checkpoint(run: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (state dicts, ints, floats, tensors) so a crash never leaves a torn file.

    The previous checkpoint stays in place until the new one is complete; torch reports a full disk as
    "unexpected pos" or "file write failed", which is turned into the OS's own no-space error here.
    """
    path = checkpoint_path(run)
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except RuntimeError as exc:
        free = shutil.disk_usage(path.parent).free if path.parent.exists() else 0
        if "unexpected pos" in str(exc) or "write failed" in str(exc) or free < 64 << 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise
    return path


def load_checkpoint(run: Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The latest checkpoint of ``run``, or None when there is none yet."""
    path = checkpoint_path(run)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise RunFolderError(
            f"{path} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}): it is cut short or "
            "corrupt. Restore it from a backup, or start the run again with `dyntet train --force`") from None
    if not isinstance(state, dict) or "model" not in state or "iteration" not in state:
        raise RunFolderError(f"{path} is not a DynTet checkpoint (no model state): start again with --force")
    return state
