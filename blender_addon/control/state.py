"""What the panel shows about the backend, and the messages that change it. No ``bpy``, no threads.

Why a reducer: the worker thread never touches Blender data. It puts :data:`Update` messages on a
queue; the main thread (a ``bpy.app.timers`` function) applies them with :meth:`BackendState.apply`.
Panels only read a :class:`BackendState`, so every panel state (disconnected, idle, training, failed)
can be built in a test by applying messages, without a server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Union

Connection = Literal["disconnected", "connecting", "connected", "lost"]
JobState = Literal["submitting", "queued", "running", "done", "failed", "cancelled", "interrupted"]
TERMINAL: tuple[str, ...] = ("done", "failed", "cancelled", "interrupted")
RESUMABLE: tuple[str, ...] = ("failed", "cancelled", "interrupted")
LOG_LINES = 50
"""How many log lines the state keeps (the panel shows the last few)."""


# -- messages from the worker (and from operators) ---------------------------------------------------


@dataclass(frozen=True)
class Connecting:
    address: str


@dataclass(frozen=True)
class Connected:
    address: str
    server_version: str = ""
    protocol: int = 0
    device: str = ""
    backends: tuple[str, ...] = ()
    job_kinds: tuple[str, ...] = ()
    """The job kinds this backend can run now (``hello`` lists unavailable ones too; they are left out)."""
    workspace: str = ""
    """The server's workspace folder when it is on this machine (sequence files can be read directly)."""


@dataclass(frozen=True)
class ConnectionLost:
    reason: str
    hint: str = ""


@dataclass(frozen=True)
class Disconnected:
    """The user disconnected (not an error)."""


@dataclass(frozen=True)
class LocalProcess:
    """The local backend process started by this Blender (pid 0: none running)."""

    pid: int
    log_path: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class JobUpdate:
    """A job record or event: any field left as None keeps its previous value."""

    job_id: str
    kind: str | None = None
    state: JobState | None = None
    stage: str | None = None
    step: int | None = None
    total: int | None = None
    message: str | None = None
    eta_s: float | None = None
    metrics: dict[str, float] | None = None
    preview_path: str | None = None
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    node: str | None = None


@dataclass(frozen=True)
class JobLog:
    job_id: str
    line: str


@dataclass(frozen=True)
class Listing:
    """Names of the folders in the server's workspace."""

    datasets: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()
    sequences: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """Something the user must know about, with what to do about it."""

    message: str
    hint: str = ""


@dataclass(frozen=True)
class ClearProblem:
    pass


@dataclass(frozen=True)
class Transfer:
    """A local file on its way into a remote backend's workspace (footage, before its job is submitted)."""

    kind: str
    """The job kind it is for (the panel of that kind shows the progress)."""
    name: str
    """The file's name on this machine."""
    stage: Literal["hashing", "uploading", "done", "failed", "cancelled"]
    done: int = 0
    """Bytes hashed or acknowledged by the server."""
    total: int = 0

    @property
    def active(self) -> bool:
        return self.stage in ("hashing", "uploading")

    @property
    def fraction(self) -> float:
        return min(1.0, max(0.0, self.done / self.total)) if self.total > 0 else 0.0


@dataclass(frozen=True)
class SequenceReady:
    """A generated sequence is on this machine at ``path``: the main thread imports it."""

    job_id: str
    path: str
    relative: str = ""
    """The folder's workspace-relative name on the backend (what the Generate request asked for)."""


@dataclass(frozen=True)
class BakeReady:
    """The backend's true meshes of a Bake exact: the main thread puts them into the head's correctives."""

    job_id: str
    object_name: str
    frame_first: int
    """Scene frame of ``meshes[0]``."""
    controls: Any
    """float32 [N, C]: the control values the meshes were made from (one row per frame)."""
    meshes: Any
    """float32 [N, V, 3]: head space, metres."""


Update = Union[
    Connecting, Connected, ConnectionLost, Disconnected, LocalProcess, JobUpdate, JobLog, Listing, Problem,
    ClearProblem, SequenceReady, BakeReady, Transfer,
]


# -- state ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    """The latest known facts about one job."""

    job_id: str
    kind: str = ""
    state: JobState = "submitting"
    stage: str = ""
    step: int = 0
    total: int = 0
    message: str = ""
    eta_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    preview_path: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    error_code: str = ""
    error_message: str = ""
    node: str = ""
    """Where the job runs: the backend's host, or a cluster node (``dyntet serve --cluster``)."""
    updated: float = 0.0

    @property
    def active(self) -> bool:
        return self.state not in TERMINAL

    @property
    def fraction(self) -> float:
        """Progress in [0, 1] (0 when the total is unknown)."""
        return min(1.0, max(0.0, self.step / self.total)) if self.total > 0 else 0.0


@dataclass
class BackendState:
    """Everything the DynTet panels display about the backend. Mutated only on Blender's main thread."""

    connection: Connection = "disconnected"
    address: str = ""
    server_version: str = ""
    protocol: int = 0
    device: str = ""
    backends: tuple[str, ...] = ()
    job_kinds: tuple[str, ...] = ()
    workspace: str = ""
    local_pid: int = 0
    local_log: str = ""
    local_exit_code: int | None = None
    jobs: dict[str, JobView] = field(default_factory=dict)
    current_job: str = ""
    """The job the panel follows: the most recently submitted or updated active job."""
    log: list[str] = field(default_factory=list)
    listing: Listing = field(default_factory=Listing)
    problem: Problem | None = None
    ready: list[SequenceReady] = field(default_factory=list)
    baked: list[BakeReady] = field(default_factory=list)
    """Bake results waiting for the main thread."""
    """Sequences waiting to be imported by the main thread."""
    transfer: Transfer | None = None
    """The latest upload of footage to a remote backend (shown while it runs)."""

    # -- derived views for the panels -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.connection == "connected"

    @property
    def job(self) -> JobView | None:
        return self.jobs.get(self.current_job)

    def job_of_kind(self, *kinds: str) -> JobView | None:
        """The most recent job of one of ``kinds`` (the panel's Train section follows training jobs)."""
        matching = [job for job in self.jobs.values() if job.kind in kinds]
        return max(matching, key=lambda job: job.updated) if matching else None

    @property
    def busy(self) -> bool:
        """A job is queued or running, or footage is being uploaded for one: heavy buttons grey out."""
        return any(job.active for job in self.jobs.values()) or (self.transfer is not None and self.transfer.active)

    @property
    def phase(self) -> Literal["disconnected", "idle", "busy", "failed"]:
        """The coarse state a panel draws: not connected, ready, working, or showing a failure."""
        if self.connection != "connected":
            return "failed" if self.connection == "lost" else "disconnected"
        if self.busy:
            return "busy"
        job = self.job
        if self.problem is not None or (job is not None and job.state == "failed"):
            return "failed"
        return "idle"

    # -- reducer ----------------------------------------------------------------------------------

    def apply(self, update: Update, now: float | None = None) -> None:
        """Fold one message into the state."""
        now = time.monotonic() if now is None else now
        if isinstance(update, Connecting):
            self.connection, self.address = "connecting", update.address
        elif isinstance(update, Connected):
            self.connection = "connected"
            self.address = update.address
            self.server_version, self.protocol = update.server_version, update.protocol
            self.device, self.backends = update.device, tuple(update.backends)
            self.job_kinds, self.workspace = tuple(update.job_kinds), update.workspace
            self.problem = None
        elif isinstance(update, ConnectionLost):
            self.connection = "lost"
            self.problem = Problem(update.reason, update.hint)
            for job_id, job in self.jobs.items():
                if job.active:  # we can no longer see it; the server (if alive) keeps the truth
                    self.jobs[job_id] = replace(job, message="backend unreachable", updated=now)
        elif isinstance(update, Disconnected):
            self.connection = "disconnected"
            self.device, self.backends, self.job_kinds = "", (), ()
        elif isinstance(update, LocalProcess):
            self.local_pid, self.local_log, self.local_exit_code = update.pid, update.log_path, update.exit_code
        elif isinstance(update, JobUpdate):
            self._apply_job(update, now)
        elif isinstance(update, JobLog):
            self.log.append(update.line)
            del self.log[:-LOG_LINES]
        elif isinstance(update, Listing):
            self.listing = update
        elif isinstance(update, Problem):
            self.problem = update
        elif isinstance(update, ClearProblem):
            self.problem = None
        elif isinstance(update, SequenceReady):
            self.ready.append(update)
        elif isinstance(update, BakeReady):
            self.baked.append(update)
        elif isinstance(update, Transfer):
            self.transfer = update
        else:
            raise TypeError(f"unknown backend update {type(update).__name__}")

    def _apply_job(self, update: JobUpdate, now: float) -> None:
        job = self.jobs.get(update.job_id) or JobView(update.job_id)
        changes = {
            name: getattr(update, name)
            for name in ("kind", "state", "stage", "step", "total", "message", "eta_s", "metrics", "preview_path",
                         "result", "error_code", "error_message", "node")
            if getattr(update, name) is not None
        }
        job = replace(job, **changes, updated=now)
        self.jobs[update.job_id] = job
        if job.active or not self.current_job or self.current_job == job.job_id:
            self.current_job = job.job_id
        if job.state == "failed" and job.error_message:
            self.problem = Problem(f"{job.kind or 'job'} failed: {job.error_message}", hint_for(job.error_code))
        elif job.state == "interrupted":
            self.problem = Problem(
                f"{job.kind or 'job'} was interrupted (the backend stopped)", "Resume continues from the last checkpoint"
            )


HINTS = {
    "timeout": "Is the backend running? Start it, or check the address in the add-on preferences",
    "auth_failed": "The server refused this client's keys: check the server public key and client key file",
    "unsupported_protocol": "The backend and the add-on speak different protocol versions: update both",
    "out_of_memory": "Use the 'preview' preset, fewer iterations or a smaller crop, or a machine with more memory",
    "job_crashed": "The job's process died; Resume continues from the last checkpoint",
    "path_refused": "Paths must lie inside the backend's workspace folder",
    "not_found": "Refresh the lists: the dataset or run may have been removed",
    "unavailable": "This backend lacks a part needed for this job (see the backend's log)",
    "queue_full": "Wait for the running jobs to finish, or cancel one",
    "shutting_down": "The backend is stopping: start it again",
    "no_space": "Free disk space on the backend's machine, then press the button again (the upload continues)",
    "too_large": "The file is larger than the backend accepts (dyntet serve --max-upload-gib)",
}


def hint_for(code: str | None) -> str:
    """What the user can do about an error code (empty when there is nothing specific)."""
    return HINTS.get(code or "", "")
