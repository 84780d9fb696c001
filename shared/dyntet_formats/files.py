"""Reading our JSON, npy and npz files so that a cut-short or corrupt file is a sentence, not a traceback."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dyntet_formats.errors import FormatError


def read_json_object(path: Path, hint: str, error: type[FormatError] = FormatError) -> dict[str, Any]:
    """The JSON object in ``path``; ``hint`` (what to do) ends the message of any failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path} is missing: {hint}") from None
    except UnicodeDecodeError:
        raise error(f"{path} is not UTF-8 text (corrupt file?): {hint}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}; "
                    f"cut short or edited by hand?): {hint}") from None
    if not isinstance(value, dict):
        raise error(f"{path} must hold a JSON object, found {type(value).__name__}: {hint}")
    return value


def load_npz(path: Path, required: tuple[str, ...], hint: str,
             error: type[FormatError] = FormatError) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path`` (never unpickled); ``required`` names must be present."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise error(f"{path} is missing: {hint}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise error(f"{path} is not a readable .npz archive (cut short or corrupt: {exc}): {hint}") from None
    missing = [name for name in required if name not in arrays]
    if missing:
        raise error(f"{path} lacks the arrays {missing}: {hint}")
    return arrays
