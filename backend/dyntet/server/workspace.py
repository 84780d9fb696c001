"""The workspace: the one folder a server may read and write, and the confinement of request paths.

Layout (by convention; requests may name any path inside)::

    WORKSPACE/
      videos/ …              footage to preprocess (put there by the user)
      footage/ …             footage uploaded by clients (``upload.*``, see ``uploads.py``)
      datasets/NAME/         dataset folders      (docs/dataset-format.md)
      runs/NAME/             run folders
      sequences/NAME/        sequence folders
      .dyntet/               the server's own state: jobs/, uploads/, server.json, server.log (never served)

Every path in a request is relative to the workspace. :meth:`Workspace.resolve` applies the
syntactic rules of :func:`dyntet_protocol.schema.path_problem` and then resolves symlinks: the real
location must lie inside the workspace and outside any hidden folder (so a symlink into
``.dyntet`` or out to ``/etc`` is refused like ``../etc``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Literal

from dyntet_protocol.errors import ErrorCode, ProtocolError
from dyntet_protocol.schema import path_problem

STATE_DIR = ".dyntet"
CONVENTIONAL_DIRS = ("videos", "datasets", "runs", "sequences")

PathKind = Literal["file", "dir", "any"]


class Workspace:
    """A workspace root (created when missing) and the path rules that keep requests inside it."""

    def __init__(self, root: str | os.PathLike):
        root = Path(root).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        self.root = Path(os.path.realpath(root))
        if not self.root.is_dir():
            raise NotADirectoryError(f"workspace {root} is not a folder")
        self.state_dir = self.root / STATE_DIR
        self.state_dir.mkdir(exist_ok=True)

    def resolve(self, rel: str, *, must_exist: bool = True, kind: PathKind = "any") -> Path:
        """Real absolute path of workspace-relative ``rel``.

        Raises ProtocolError ``path_refused`` (syntax or escape, see the module docstring) or
        ``not_found`` (missing, or not a ``kind``).
        """
        if rel == "":
            real = self.root
        else:
            reason = path_problem(rel)
            if reason is not None:
                raise _refused(rel, reason)
            candidate = self.root / rel
            try:
                os.stat(candidate)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise _refused(rel, "symlink loop") from None
            real = Path(os.path.realpath(candidate))
            inside = self.relative(real)
            if inside is None:
                raise _refused(rel, "resolves outside the workspace (symlink)")
            if any(part.startswith(".") for part in Path(inside).parts):
                raise _refused(rel, "resolves into a hidden folder (symlink)")
        if must_exist or kind != "any":
            if not real.exists():
                raise ProtocolError(ErrorCode.NOT_FOUND, f"{rel or '.'} does not exist in the workspace", {"path": rel})
            if kind == "file" and not real.is_file():
                raise ProtocolError(ErrorCode.NOT_FOUND, f"{rel} is not a file", {"path": rel, "expected": "file"})
            if kind == "dir" and not real.is_dir():
                raise ProtocolError(ErrorCode.NOT_FOUND,
                                    f"{rel or '.'} is not a folder", {"path": rel, "expected": "folder"})
        return real

    def resolve_output(self, rel: str) -> Path:
        """Real path for a folder a job will create or overwrite; its nearest existing ancestor
        must be a folder inside the workspace, and the path itself may not be the workspace."""
        if rel == "":
            raise _refused(rel, "the workspace itself cannot be an output")
        real = self.resolve(rel, must_exist=False)
        if real.exists() and not real.is_dir():
            raise ProtocolError(ErrorCode.INVALID_STATE, f"{rel} exists and is not a folder", {"path": rel})
        return real

    def relative(self, real: Path) -> str | None:
        """``real`` as a workspace-relative string, or None when it is outside."""
        try:
            rel = Path(real).relative_to(self.root)
        except ValueError:
            return None
        return rel.as_posix() if rel.parts else ""


def _refused(rel: str, reason: str) -> ProtocolError:
    return ProtocolError(ErrorCode.PATH_REFUSED, f"path refused: {reason}", {"path": rel[:200], "reason": reason})
