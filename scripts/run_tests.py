"""Run the test suite (``make test``, and so CI).

* pytest's "no tests collected" (exit 5) counts as a failure.
* Every process the suite starts inherits a marker in its environment. Processes still carrying it
  when pytest returns (a detached backend that a failing test never stopped) are named and ended:
  otherwise they would hold the caller's output pipe open and a CI run would wait for them forever.
* The verdict is final once pytest returns: the interpreter then exits at once, so a finaliser
  blocked on something a failed test left open cannot hang the run either.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from pathlib import Path

MARKER = "DYNTET_TEST_SESSION"


def _marked_processes(token: str) -> dict[int, str]:
    """``pid → command line`` of live processes whose environment carries ``MARKER=token`` (Linux)."""
    needle = f"{MARKER}={token}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                continue  # already dead, only waiting for its parent
            found[pid] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:160]
        except (OSError, ValueError):
            continue
    return found


def _end_leftovers(token: str, grace_s: float = 5.0) -> None:
    leftovers = _marked_processes(token)
    if not leftovers:
        return
    print(f"\nrun_tests: {len(leftovers)} process(es) started by the tests were still running; ending them:",
          file=sys.stderr)
    for pid, cmdline in sorted(leftovers.items()):
        print(f"  {pid}: {cmdline}", file=sys.stderr)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in list(leftovers):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _marked_processes(token):
            time.sleep(0.1)
        leftovers = _marked_processes(token)
        if not leftovers:
            return


def main() -> int:
    import pytest

    token = uuid.uuid4().hex
    os.environ[MARKER] = token
    code = int(pytest.main(["tests", *sys.argv[1:]]))
    if sys.platform.startswith("linux"):
        _end_leftovers(token)
    return 1 if code == 5 else code


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
