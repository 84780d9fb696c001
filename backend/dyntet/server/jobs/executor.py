"""Where heavy jobs run: this machine (a spawned process, the default) or a Ray cluster.

The manager talks to a started job through two small duck types, whatever runs it: a *process*
(``pid``, ``is_alive()``, ``terminate()``, ``kill()``, ``join(timeout)``, ``exitcode``) and a *pipe*
(``send_bytes(b"stop")``, ``recv_bytes(maxlen)`` raising EOFError at the end, ``close()``) carrying the
msgpack messages of ``child.py``. So the queue, the states, cancel and the event stream are the same
code for both, and the local path is exactly what it was before clusters existed.
"""

from __future__ import annotations

import multiprocessing
import socket
from dataclasses import dataclass
from typing import Any, Protocol

from . import child


@dataclass
class Launched:
    process: Any
    conn: Any
    node: str | None
    """Where the job runs, when known at once (a Ray job reports it with its first message)."""


class Executor(Protocol):
    name: str
    retries: int
    """Automatic resubmissions of a resumable job whose worker was lost (0: the user resumes)."""

    def start(self, job_id: str, kind_name: str, target: str, params: dict[str, Any], workspace: str,
              resume: bool, log_path: str) -> Launched: ...

    def slots(self, configured: int) -> int:
        """Heavy jobs that may run at once."""

    def reattach(self, job_id: str) -> Launched | None:
        """A job still running from an earlier server, or None."""

    def status(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """One spawned process per job on this machine (a fresh interpreter: CUDA-safe, crash-isolated)."""

    name = "local"
    retries = 0

    def __init__(self) -> None:
        self._mp = multiprocessing.get_context("spawn")

    def start(self, job_id: str, kind_name: str, target: str, params: dict[str, Any], workspace: str,
              resume: bool, log_path: str) -> Launched:
        parent_conn, child_conn = self._mp.Pipe(duplex=True)
        process = self._mp.Process(target=child.main, name=f"dyntet-job-{job_id}",
                                   args=(job_id, target, params, workspace, resume, child_conn, log_path))
        process.start()
        child_conn.close()
        return Launched(process, parent_conn, socket.gethostname())

    def slots(self, configured: int) -> int:
        return configured

    def reattach(self, job_id: str) -> Launched | None:
        return None  # a local job process never outlives its server (see child.PARENT_GONE_GRACE_S)

    def status(self) -> dict[str, Any]:
        return {"executor": self.name, "nodes": [{"node": socket.gethostname(), "alive": True}]}

    def close(self) -> None:
        pass


def make_executor(cluster: str) -> Executor:
    """``local``, ``auto`` (the Ray cluster this machine belongs to), ``ray://HOST:PORT`` (Ray client)
    or ``HOST:PORT`` (a Ray head's GCS address). Raises ValueError with what to do."""
    if cluster == "local":
        return LocalExecutor()
    try:
        from .ray_executor import RayExecutor
    except ImportError as exc:
        raise ValueError(f"--cluster {cluster} needs Ray: pip install 'dyntet[cluster]' ({exc})") from None
    return RayExecutor(cluster)
