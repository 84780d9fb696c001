"""One sentence for every failure a user can cause or fix: the CLI prints it, the server sends it.

Errors of our own formats (:class:`~dyntet_formats.FormatError`, which names the file), a folder another
process is writing, and the OS's refusals (no space, read-only, permission, missing file) are the user's
to fix; anything else is a bug in DynTet and keeps its traceback.
"""

from __future__ import annotations

import errno

from dyntet.formats.lock import FolderBusy
from dyntet_formats.errors import FormatError

_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space (or choose an output on another disk) and run the same "
                  "command again — what was finished is kept",
    errno.EDQUOT: "your disk quota is used up: free some space and run the same command again",
    errno.EROFS: "it is on a read-only file system: choose an output folder you can write to",
    errno.EACCES: "permission denied: choose a folder you can write to, or fix its permissions",
    errno.EPERM: "the operation is not permitted there: choose another folder, or fix its permissions",
    errno.ENOENT: "it does not exist: check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder where a file was expected: check the path",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter one",
}


def explain(exc: BaseException) -> str | None:
    """A one-paragraph message for a failure the user can act on; None for a bug (keep the traceback)."""
    if isinstance(exc, (FormatError, FolderBusy)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in _OS_ADVICE:
        where = exc.filename or exc.filename2
        subject = f"cannot write or read {where}" if where else "a file operation failed"
        return f"{subject}: {_OS_ADVICE[exc.errno]} ({exc.strerror or errno.errorcode[exc.errno]})"
    if isinstance(exc, MemoryError):
        return "out of memory: close other programs, or use a smaller --size / preset, and run it again"
    return None
