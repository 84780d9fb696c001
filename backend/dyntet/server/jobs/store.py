"""Job records persisted as one JSON file per job in ``WORKSPACE/.dyntet/jobs/`` (atomic writes).

A record survives the server: after a restart :meth:`JobStore.load_all` returns every job, and the
manager marks the ones that were ``running`` as ``interrupted``. A malformed record file is skipped
with a warning (it never stops the server from starting).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dyntet.formats.atomic import write_json_atomic
from dyntet_protocol.messages import JOB_ID_PATTERN, JOB_STATES

log = logging.getLogger("dyntet.server")

RECORD_FORMAT = "dyntet-job"
RECORD_VERSION = 1
MAX_RECORD_BYTES = 4 * 1024 * 1024


@dataclass
class JobRecord:
    """Everything known about one job; what ``job.status`` returns (plus ``log_tail``)."""

    id: str
    kind: str
    params: dict[str, Any]
    """The validated parameters, paths workspace-relative (so a moved workspace still works)."""
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    """How often the job has been started (resume increments it)."""
    pid: int | None = None
    """Process id of the job's current (or last) process (on ``node``)."""
    node: str | None = None
    """Where the job runs or ran: this machine's host name, or a Ray node's host and address."""
    retries: int = 0
    """Automatic resubmissions after a lost cluster worker (bounded by the executor)."""
    progress: dict[str, Any] | None = None
    """Latest progress: ``{stage, step, total, message, metrics, eta_s, preview}``."""
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    """``{code, message, details}`` when the job failed, crashed or was interrupted."""
    cancel_requested: bool = False
    resumable: bool = False
    """The kind continues from a checkpoint on ``job.resume`` (others restart from the beginning)."""
    outputs: dict[str, str] = field(default_factory=dict)
    """Workspace-relative folders the job writes, by role (``{"run": "runs/anna"}``)."""
    checkpoint: str | None = None
    """Workspace-relative checkpoint file, for kinds that have one."""

    def to_json(self) -> dict[str, Any]:
        return {"format": RECORD_FORMAT, "version": RECORD_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> "JobRecord":
        """Rebuild a record; raises ValueError when ``data`` is not a record this code understands."""
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT or data.get("version") != RECORD_VERSION:
            raise ValueError("not a dyntet job record of version 1")
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        if not isinstance(record.id, str) or re.fullmatch(JOB_ID_PATTERN, record.id) is None:
            raise ValueError(f"bad job id {record.id!r}")
        if record.state not in JOB_STATES or not isinstance(record.params, dict):
            raise ValueError(f"bad state {record.state!r} or params")
        return record


class JobStore:
    """Reads and writes job records and locates each job's log file."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def new_id(self) -> str:
        """``YYYYMMDD-HHMMSS-xxxxxx`` (UTC) not used before in this store."""
        while True:
            job_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
            if not self.path(job_id).exists():
                return job_id

    def path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.json"

    def log_path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.log"

    def save(self, record: JobRecord) -> None:
        write_json_atomic(self.path(record.id), record.to_json())

    def load_all(self) -> list[JobRecord]:
        """All readable records, oldest first."""
        records = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                if path.stat().st_size > MAX_RECORD_BYTES:
                    raise ValueError("file too large")
                records.append(JobRecord.from_json(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable job record %s: %s", path.name, exc)
        return records

    def log_tail(self, job_id: str, lines: int = 20, max_bytes: int = 8192) -> list[str]:
        """The last ``lines`` lines of the job's log (empty when there is none)."""
        path = self.log_path(job_id)
        try:
            with open(path, "rb") as handle:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - max_bytes))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]
