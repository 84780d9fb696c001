"""Listings of datasets, runs, sequences and folder contents for ``list.*`` requests.

Only facts a client needs to choose something are returned; a folder whose manifest is missing or
broken is listed with ``complete: false`` (an interrupted stage never looks complete).
"""

from __future__ import annotations

from dyntet.formats.run import RunFolder

import json
import os
from pathlib import Path
from typing import Any

from .workspace import Workspace

MAX_MANIFEST_BYTES = 1024 * 1024
MAX_LIST_ENTRIES = 10_000

_DATASET_KEYS = ("num_frames", "size", "fps", "num_expression", "has_audio", "train_frames", "test_frames")
_SEQUENCE_KEYS = ("num_frames", "num_vertices", "num_faces", "fps", "has_audio")
_RUN_CONFIG_KEYS = ("preset", "dataset")


def list_datasets(ws: Workspace) -> list[dict[str, Any]]:
    return [_folder_with_manifest(ws, p, "dyntet-dataset", _DATASET_KEYS) for p in _children(ws, "datasets")]


def list_sequences(ws: Workspace) -> list[dict[str, Any]]:
    return [_folder_with_manifest(ws, p, "dyntet-sequence", _SEQUENCE_KEYS) for p in _children(ws, "sequences")]


def list_runs(ws: Workspace) -> list[dict[str, Any]]:
    items = []
    for folder in _children(ws, "runs"):
        run = RunFolder(folder)
        checkpoint = run.checkpoint_path
        config = _read_json(run.config_path)
        item: dict[str, Any] = {
            "name": folder.name, "path": ws.relative(folder), "mtime": folder.stat().st_mtime,
            "has_checkpoint": checkpoint.is_file(),
            "checkpoint_mtime": checkpoint.stat().st_mtime if checkpoint.is_file() else None,
            "preview": ws.relative(run.preview_path) if run.preview_path.is_file() else None,
        }
        if isinstance(config, dict):
            item.update({k: config[k] for k in _RUN_CONFIG_KEYS if _is_plain(config.get(k))})
        items.append(item)
    return items


def list_files(ws: Workspace, rel: str) -> tuple[list[dict[str, Any]], bool]:
    """Entries of folder ``rel`` (hidden ones and symlinks leaving the workspace are skipped);
    returns ``(entries, truncated)``."""
    folder = ws.resolve(rel, kind="dir")
    entries: list[dict[str, Any]] = []
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink() and ws.relative(Path(os.path.realpath(entry.path))) is None:
                continue
            if len(entries) >= MAX_LIST_ENTRIES:
                return sorted(entries, key=lambda e: e["name"]), True
            try:
                stat = entry.stat()
            except OSError:
                continue
            kind = "dir" if entry.is_dir() else "file" if entry.is_file() else "other"
            entries.append({"name": entry.name, "kind": kind, "size": stat.st_size if kind == "file" else None,
                            "mtime": stat.st_mtime})
    return sorted(entries, key=lambda e: e["name"]), False


def _children(ws: Workspace, top: str) -> list[Path]:
    folder = ws.root / top
    if not folder.is_dir():
        return []
    out = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        real = Path(os.path.realpath(child))
        if ws.relative(real) is None:
            continue
        out.append(child)
    return out


def _folder_with_manifest(ws: Workspace, folder: Path, fmt: str, keys: tuple[str, ...]) -> dict[str, Any]:
    manifest = _read_json(folder / "manifest.json")
    complete = isinstance(manifest, dict) and manifest.get("format") == fmt
    item: dict[str, Any] = {"name": folder.name, "path": ws.relative(folder), "complete": complete,
                            "mtime": folder.stat().st_mtime}
    if complete:
        item["version"] = manifest.get("version")
        item.update({k: manifest[k] for k in keys if _is_plain(manifest.get(k))})
    return item


def _read_json(path: Path) -> Any:
    try:
        if not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_plain(value: Any) -> bool:
    """JSON scalars and short lists of them (what may go into a listing)."""
    if isinstance(value, (bool, int, float, str)) and not (isinstance(value, str) and len(value) > 1024):
        return True
    return isinstance(value, list) and len(value) <= 16 and all(isinstance(v, (int, float)) for v in value)
