"""Files between this machine and the backend: sequence folders and a dataset's tracking report come
here, footage goes to a remote backend. No ``bpy``.

A local backend's workspace is on this disk, so its files are read where they are (``docs/protocol.md``:
"on one machine a client may read sequence files directly"). A remote backend's files travel in chunks
with ``Client.fetch_file`` into the add-on's user folder; a folder appears under its final name only when
complete, so an interrupted download is never imported. Footage for a remote backend travels the other
way with ``Client.upload`` (``upload.*`` requests): resumable, checked by SHA-256, and placed under
``footage/`` only when complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, Callable

FOOTAGE_FOLDER = "footage"
"""Where footage from this machine goes in the backend's workspace."""

TransferProgress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stage ``"hashing"`` (reading the local file) or ``"uploading"``."""

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


def upload_name(file_name: str, digest: str = "") -> str:
    """A name the server's path rules accept for a local file (no leading ``.`` or ``~``, no ``:``,
    backslashes or control characters); with ``digest``, the start of the file's SHA-256 is added so the
    name cannot meet another file's (``take 1.mov`` → ``take 1_3fa9c2d17e01.mov``)."""
    stem, dot, suffix = file_name.rpartition(".")
    if not dot or not stem:
        stem, suffix = file_name, ""

    def clean(text: str) -> str:
        return "".join(c if c.isalnum() or c in "-_ " else "_" for c in text).strip(" _")

    stem = clean(stem)[:120] or "video"
    suffix = clean(suffix)[:16]
    if digest:
        stem = f"{stem}_{digest[:12]}"
    return f"{stem}.{suffix}" if suffix else stem


def upload_footage(client: Any, source: Path, progress: TransferProgress) -> dict[str, Any]:
    """Send the video ``source`` into a remote backend's workspace under ``footage/``.

    The same file sent again costs nothing (the server already holds those bytes), and an interrupted
    upload continues where it stopped. When another file already has that name there, this one gets its
    content hash in the name, so nothing on the server is replaced.

    Returns ``Client.upload``'s result: ``path`` (workspace-relative), ``existing``, ``sent``, ….
    Raises ProtocolError (``no_space``, ``too_large``, ``timeout`` …) or whatever ``progress`` raises.
    """
    from dyntet_protocol.client import file_sha256

    digest = file_sha256(source, progress=lambda done, total: progress("hashing", done, total))

    def send(name: str) -> dict[str, Any]:
        return client.upload(source, f"{FOOTAGE_FOLDER}/{name}", sha256=digest,
                             progress=lambda done, total: progress("uploading", done, total))

    try:
        return send(upload_name(source.name))
    except Exception as exc:
        if (getattr(exc, "details", None) or {}).get("conflict") != "content":
            raise
    return send(upload_name(source.name, digest))
