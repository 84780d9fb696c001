"""Files sent *to* the workspace (``upload.*`` requests): chunked, resumable, verified, placed atomically.

Why: a remote backend cannot read the artist's disk, and footage may be gigabytes. A file arrives as
ordered chunks inside requests (≤ ``MAX_UPLOAD_CHUNK_BYTES`` each) and is written to
``.dyntet/uploads/ID.part`` — a hidden folder, never served — so its destination never shows a half file.
Only when its size and SHA-256 match what ``upload.begin`` declared is it hard-linked into place (no
clobbering: an existing destination is never replaced).

The upload id is a hash of (path, size, sha256) and the length of the ``.part`` file is the only record of
progress, so a client whose connection dropped — or a restarted server — continues from ``received``.
Partial uploads untouched for :data:`STALE_S` are removed when a new upload begins.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dyntet_protocol.constants import DEFAULT_MAX_UPLOAD_BYTES, MAX_UPLOAD_CHUNK_BYTES, MIB
from dyntet_protocol.errors import ErrorCode, ProtocolError

from .workspace import Workspace

UPLOAD_DIR = "uploads"
"""Under the workspace's ``.dyntet/``."""
STALE_S = 7 * 24 * 3600.0
"""A partial upload nobody has continued for this long is deleted."""
MAX_RUNNING_DIGESTS = 64
"""Uploads whose SHA-256 is kept up to date chunk by chunk; others are hashed from disk at finish."""
_META_FORMAT = "dyntet-upload"
_NO_SPACE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@dataclass(frozen=True)
class _Upload:
    id: str
    path: str
    """Workspace-relative destination."""
    size: int
    sha256: str


class Uploads:
    """The partial uploads of one workspace. Called from the server's single loop thread only."""

    def __init__(self, ws: Workspace, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                 chunk_bytes: int = MAX_UPLOAD_CHUNK_BYTES):
        self.ws = ws
        self.max_bytes = int(max_bytes)
        self.chunk_bytes = int(chunk_bytes)
        self.folder = ws.state_dir / UPLOAD_DIR
        self._digests: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        """upload id → (running sha256, bytes it has seen): saves re-reading the file at finish."""

    # --- requests ----------------------------------------------------------------------------------

    def begin(self, rel: str, size: int, sha256: str) -> dict[str, Any]:
        """Start or resume an upload to ``rel``. ``complete`` is true (and nothing needs sending) when the
        destination already holds exactly these bytes."""
        if size > self.max_bytes:
            raise ProtocolError(ErrorCode.TOO_LARGE,
                                f"{rel}: {_gib(size)} exceed this server's upload limit of {_gib(self.max_bytes)}",
                                {"path": rel, "size": size, "limit": self.max_bytes})
        dest = self.ws.resolve(rel, must_exist=False)
        upload = _Upload(upload_id(rel, size, sha256), rel, size, sha256)
        reply = {"upload_id": upload.id, "path": rel, "size": size, "sha256": sha256,
                 "chunk_bytes": self.chunk_bytes}
        if self._same_file_in_place(dest, upload):
            self._discard(upload.id)
            return {**reply, "received": size, "complete": True}
        self.folder.mkdir(exist_ok=True)
        self.prune(keep=upload.id)
        part = self._part(upload.id)
        received = part.stat().st_size if part.is_file() else 0
        if received > size or self._load(upload.id) not in (None, upload):
            self._discard(upload.id)  # not this file's bytes: start afresh
            received = 0
        require_space(self.folder, size - received, rel)
        ancestor = _existing_ancestor(dest.parent)
        if os.stat(ancestor).st_dev != os.stat(self.folder).st_dev:  # placing it will copy: room there too
            require_space(ancestor, size, rel)
        if self._load(upload.id) is None:
            _write_json(self._meta(upload.id), {"format": _META_FORMAT, "version": 1, "path": rel, "size": size,
                                                "sha256": sha256, "created": time.time()})
        part.touch()
        return {**reply, "received": received, "complete": False}

    def chunk(self, upload_id_: str, offset: int, data: bytes) -> dict[str, Any]:
        """Append ``data`` at ``offset``, which must be exactly the bytes received so far."""
        upload = self._require(upload_id_)
        part = self._part(upload.id)
        received = part.stat().st_size if part.is_file() else 0
        if offset != received:
            raise ProtocolError(ErrorCode.INVALID_STATE,
                                f"upload {upload.id}: chunk at offset {offset}, but {received} bytes have arrived; "
                                f"send from offset {received}",
                                {"upload_id": upload.id, "offset": offset, "received": received})
        if len(data) > self.chunk_bytes:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"a chunk of {len(data)} bytes exceeds {self.chunk_bytes}",
                                {"limit": self.chunk_bytes, "size": len(data)})
        if offset + len(data) > upload.size:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"upload {upload.id}: {offset + len(data)} bytes would exceed the declared size "
                                f"{upload.size}", {"upload_id": upload.id, "size": upload.size, "offset": offset,
                                                   "length": len(data)})
        try:
            with open(part, "r+b" if part.exists() else "wb") as handle:
                handle.seek(offset)
                handle.write(data)
        except OSError as exc:
            if os.path.exists(part):
                os.truncate(part, offset)  # keep ``received`` a count of whole chunks
            if exc.errno in _NO_SPACE_ERRNOS:
                free = shutil.disk_usage(self.folder).free
                raise ProtocolError(ErrorCode.NO_SPACE,
                                    f"the server's disk filled up during the upload of {upload.path} "
                                    f"({_gib(upload.size - offset)} still to come, {_gib(free)} free)",
                                    {"path": upload.path, "needed": upload.size - offset, "free": free}) from None
            raise
        self._advance_digest(upload.id, offset, data)
        return {"upload_id": upload.id, "received": offset + len(data)}

    def finish(self, upload_id_: str) -> dict[str, Any]:
        """Check size and SHA-256, then link the file into place. A mismatching file is discarded."""
        upload = self._require(upload_id_)
        part = self._part(upload.id)
        received = part.stat().st_size if part.is_file() else 0
        if received != upload.size:
            raise ProtocolError(ErrorCode.INVALID_STATE,
                                f"upload {upload.id}: {received} of {upload.size} bytes have arrived",
                                {"upload_id": upload.id, "received": received, "size": upload.size})
        actual = self._digest_of(upload.id, part, received)
        if actual != upload.sha256:
            self._discard(upload.id)
            raise ProtocolError(ErrorCode.INVALID_STATE,
                                f"upload {upload.id}: the bytes that arrived have SHA-256 {actual}, not the declared "
                                f"{upload.sha256}; the partial upload was discarded, send the file again",
                                {"upload_id": upload.id, "expected_sha256": upload.sha256, "actual_sha256": actual})
        dest = self.ws.resolve(upload.path, must_exist=False)  # again: the tree may have changed since begin
        existing = self._same_file_in_place(dest, upload)
        if not existing:
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise _conflict(upload.path, "parent", "a parent of it is a file") from None
            self.ws.resolve(upload.path, must_exist=False)  # the new folders are inside too
            with open(part, "rb+") as handle:
                os.fsync(handle.fileno())
            _place(part, dest, upload.path)
        self._discard(upload.id)
        return {"path": upload.path, "size": upload.size, "sha256": upload.sha256, "existing": existing}

    def abort(self, upload_id_: str) -> dict[str, Any]:
        """Discard a partial upload (idempotent: ``aborted`` says whether there was one)."""
        known = self._meta(upload_id_).exists() or self._part(upload_id_).exists()
        self._discard(upload_id_)
        return {"upload_id": upload_id_, "aborted": known}

    def limits(self) -> dict[str, int]:
        """For ``hello.limits``."""
        return {"max_upload_bytes": self.max_bytes, "upload_chunk_bytes": self.chunk_bytes}

    # --- housekeeping ------------------------------------------------------------------------------

    def prune(self, max_age_s: float = STALE_S, keep: str = "") -> list[str]:
        """Delete partial uploads untouched for ``max_age_s``; returns their ids."""
        if not self.folder.is_dir():
            return []
        now = time.time()
        latest: dict[str, float] = {}
        for entry in self.folder.iterdir():
            if entry.suffix in (".part", ".json"):
                latest[entry.stem] = max(latest.get(entry.stem, 0.0), entry.stat().st_mtime)
        stale = [uid for uid, mtime in latest.items() if uid != keep and now - mtime > max_age_s]
        for uid in stale:
            self._discard(uid)
        return stale

    # --- helpers -----------------------------------------------------------------------------------

    def _part(self, uid: str) -> Path:
        return self.folder / f"{uid}.part"

    def _meta(self, uid: str) -> Path:
        return self.folder / f"{uid}.json"

    def _load(self, uid: str) -> _Upload | None:
        try:
            data = json.loads(self._meta(uid).read_text(encoding="utf-8"))
            upload = _Upload(uid, str(data["path"]), int(data["size"]), str(data["sha256"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return upload if data.get("format") == _META_FORMAT and upload_id(upload.path, upload.size,
                                                                            upload.sha256) == uid else None

    def _require(self, uid: str) -> _Upload:
        upload = self._load(uid)
        if upload is None:
            raise ProtocolError(ErrorCode.NOT_FOUND,
                                f"no upload {uid} (finished, aborted, expired, or never begun): call upload.begin",
                                {"upload_id": uid})
        return upload

    def _discard(self, uid: str) -> None:
        self._digests.pop(uid, None)
        for path in (self._part(uid), self._meta(uid)):
            path.unlink(missing_ok=True)

    def _advance_digest(self, uid: str, offset: int, data: bytes) -> None:
        digest, seen = self._digests.pop(uid, (None, -1))
        if offset == 0:
            digest, seen = hashlib.sha256(), 0
        if digest is None or seen != offset:
            return  # resumed after a restart: finish hashes the file instead
        digest.update(data)
        self._digests[uid] = (digest, seen + len(data))
        while len(self._digests) > MAX_RUNNING_DIGESTS:
            self._digests.popitem(last=False)

    def _digest_of(self, uid: str, part: Path, size: int) -> str:
        digest, seen = self._digests.get(uid, (None, -1))
        if digest is not None and seen == size:
            return digest.hexdigest()
        return _file_sha256(part)

    def _same_file_in_place(self, dest: Path, upload: _Upload) -> bool:
        """True when ``dest`` already holds the upload's bytes; refuses a destination holding anything else."""
        if not dest.exists():
            ancestor = _existing_ancestor(dest.parent)
            if not ancestor.is_dir():
                raise _conflict(upload.path, "parent", f"{self.ws.relative(ancestor)} is a file")
            return False
        if not dest.is_file():
            raise _conflict(upload.path, "folder", "it is a folder")
        if dest.stat().st_size == upload.size and _file_sha256(dest) == upload.sha256:
            return True
        raise _conflict(upload.path, "content", "it exists with other content (uploads never replace a file)")


def upload_id(rel: str, size: int, sha256: str) -> str:
    """The id of uploading these bytes to ``rel``: the same file to the same place resumes one upload."""
    return hashlib.sha256(f"{rel}\n{size}\n{sha256}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def require_space(folder: Path, needed: int, rel: str) -> None:
    """Refuse (``no_space``) when ``folder``'s file system has fewer than ``needed`` free bytes."""
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise ProtocolError(ErrorCode.NO_SPACE,
                            f"not enough free disk space on the server for {rel}: it needs {_gib(needed)} "
                            f"({needed} bytes), {_gib(free)} ({free} bytes) are free",
                            {"path": rel, "needed": needed, "free": free})


def _place(part: Path, dest: Path, rel: str) -> None:
    """Put the finished file at ``dest`` in one step without ever replacing an existing file: a hard link
    (atomic, fails if ``dest`` exists); across file systems, a hidden copy beside ``dest`` linked the same way;
    where there are no hard links, a rename after checking that ``dest`` is still free."""
    source = part
    for attempt in range(2):
        try:
            os.link(source, dest)
        except FileExistsError:
            if source != part:
                source.unlink()
            raise _conflict(rel, "content", "a file appeared there during the upload") from None
        except OSError as exc:
            if exc.errno == errno.EXDEV and attempt == 0:
                source = dest.with_name(f".{part.stem}.upload")  # hidden, so never listed or served
                shutil.copyfile(part, source)
                with open(source, "rb+") as handle:
                    os.fsync(handle.fileno())
                continue
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            break
        else:
            if source != part:
                source.unlink()
            return
    if dest.exists():
        raise _conflict(rel, "content", "a file appeared there during the upload")
    os.replace(source, dest)


def _conflict(rel: str, what: str, why: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_STATE, f"cannot upload to {rel}: {why}", {"path": rel, "conflict": what})


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _gib(n: int) -> str:
    return f"{n / 1024 ** 3:.2f} GiB" if n >= 1024 ** 3 else f"{n / 1024 ** 2:.1f} MiB"
