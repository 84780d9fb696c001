"""Keeping MediaPipe's native logging (TensorFlow Lite, absl) off the user's terminal.

Those lines ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires …") are written by
C++ threads straight to file descriptor 2, at moments Python does not see (a model starts at the first
frame with a face), so Python's logging cannot reach them and they buried our own messages. For the
length of a command, fd 2 points at /dev/null and Python's ``sys.stderr`` (progress bars, our errors) at
a duplicate of the real one. ``DYNTET_VERBOSE=1`` (``dyntet --verbose``) lets everything through.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    if os.environ.get("DYNTET_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    python_stderr = sys.stderr
    if _is_fd2(python_stderr):  # keep our own writes on the terminal
        sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0), encoding="utf-8",
                                      errors="replace", line_buffering=True, write_through=True)
    try:
        yield
    finally:
        if sys.stderr is not python_stderr:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)


def _is_fd2(stream: object) -> bool:
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
