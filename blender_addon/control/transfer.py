"""Bringing backend files to this machine: sequence folders and a dataset's tracking report. No ``bpy``.

A local backend's workspace is on this disk, so its files are read where they are (``docs/protocol.md``:
"on one machine a client may read sequence files directly"). A remote backend's files travel in chunks
with ``Client.fetch_file`` into the add-on's user folder; a folder appears under its final name only when
complete, so an interrupted download is never imported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from .commands import BackendSettings


def local_sequence(settings: BackendSettings, relative: str) -> Path | None:
    """The sequence folder in a local backend's workspace, when it is there and complete."""
    folder = Path(settings.workspace) / PurePosixPath(relative)
    return folder if (folder / "manifest.json").is_file() else None


def bring_sequence(client: Any, settings: BackendSettings | None, relative: str, key: str) -> Path:
    """The sequence folder ``relative`` (workspace-relative) on this machine.

    Args:
        client: a connected ``dyntet_protocol.Client`` (needed for remote backends).
        settings: the connection's settings (mode, workspace, the add-on's user folder).
        relative: e.g. ``sequences/anna_test``.
        key: names the download folder (``<user folder>/sequences/<key>``), e.g. the job id.

    Raises:
        RuntimeError: not connected, or the fetched folder is not a sequence folder.
    """
    if settings is not None and settings.mode == "LOCAL":
        local = local_sequence(settings, relative)
        if local is not None:
            return local
    if client is None:
        raise RuntimeError(f"not connected: cannot fetch {relative}")
    destination = Path(settings.state_dir if settings else ".") / "sequences" / key
    partial = destination.with_name(destination.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    fetch_tree(client, relative, partial)
    if not (partial / "manifest.json").is_file():
        raise RuntimeError(f"{relative} on the backend has no manifest.json")
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    return destination


def fetch_tree(client: Any, relative: str, destination: Path) -> None:
    """Download the folder ``relative`` and everything below it into ``destination``."""
    for item in client.list_files(relative):
        name = str(item.get("name", ""))
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            continue  # the server never sends these; a path must not escape the destination anyway
        child = f"{relative.rstrip('/')}/{name}"
        if item.get("kind") == "dir":
            fetch_tree(client, child, destination / name)
        elif item.get("kind") == "file":
            client.fetch_file(child, destination / name)


def dataset_report(client: Any, settings: BackendSettings, dataset: str, key: str) -> tuple[Path, dict]:
    """``(contact sheet image, report.json contents)`` of a dataset folder, read or fetched.

    Raises:
        OSError / ValueError / ProtocolError: the files are missing or unreadable.
    """
    if settings.mode == "LOCAL":
        folder = Path(settings.workspace) / PurePosixPath(dataset)
        sheet = folder / "contact_sheet.png"
        text = (folder / "report.json").read_text(encoding="utf-8")
    else:
        if client is None:
            raise RuntimeError("not connected")
        target = Path(settings.state_dir) / "previews" / f"{key}_contact_sheet.png"
        sheet = client.fetch_file(f"{dataset}/contact_sheet.png", target)
        text = client.fetch_bytes(f"{dataset}/report.json").decode("utf-8")
    report = json.loads(text)
    return sheet, report if isinstance(report, dict) else {}
