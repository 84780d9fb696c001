"""The message catalogue: every request type with its parameter schema, every event type, job states.

This table is the single source of truth for what a request may carry; the server validates each
request against it before dispatch, and the client validates before sending (so a mistake is
reported locally with the same error the server would give). ``docs/protocol.md`` documents it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES, MAX_UPLOAD_CHUNK_BYTES
from .schema import Array, Bytes, Int, JsonMap, ListOf, Nullable, Record, RelPath, Str

REQUEST_ID_PATTERN = r"[\x21-\x7e]{1,64}"
"""Request ids: 1–64 printable ASCII characters without spaces, chosen by the client."""
JOB_ID_PATTERN = r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}"
"""Job ids: ``YYYYMMDD-HHMMSS-xxxxxx`` (UTC creation time + 6 hex digits); sortable, filename-safe."""
KIND_PATTERN = r"[a-z][a-z0-9_]{0,31}"
ARRAY_NAME_PATTERN = r"[A-Za-z0-9_]{1,64}"
SHA256_PATTERN = r"[0-9a-f]{64}"
"""A SHA-256 digest as 64 lowercase hex digits (what ``hashlib.sha256().hexdigest()`` gives)."""
UPLOAD_ID_PATTERN = r"[0-9a-f]{32}"
"""Upload ids: 32 hex digits, derived by the server from (path, size, sha256), so a repeated
``upload.begin`` of the same file names the same partial upload and resumes it."""

JOB_STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
"""``queued`` → ``running`` → one of ``done`` / ``failed`` / ``cancelled`` / ``interrupted``.
``interrupted``: the job's process (or the server) died mid-run; ``job.resume`` continues it."""
TERMINAL_STATES = ("done", "failed", "cancelled", "interrupted")
RESUMABLE_STATES = ("failed", "cancelled", "interrupted")

FRAME_DTYPES = ("float32", "float16")

EVENT_TYPES = ("heartbeat", "state", "progress", "log", "preview", "done", "failed")
"""Events published on the PUB socket (see ``docs/protocol.md``)."""

MAX_CONTROLS = 256
"""Named controls a ``bake.exact`` request may carry."""
MAX_BAKE_VALUES = 240_000
"""Control values (frames × controls) in one ``bake.exact``: 0.92 MiB as float32, under the 1 MiB request
frame (9,600 frames of 25 controls)."""

JOB_ID = Str(min_len=22, max_len=22, pattern=JOB_ID_PATTERN)
UPLOAD_ID = Str(min_len=32, max_len=32, pattern=UPLOAD_ID_PATTERN)


@dataclass(frozen=True)
class RequestSpec:
    """One request type."""

    params: Record
    summary: str
    idempotent: bool = True
    """Safe to resend after a timeout (the client retries these once after reconnecting)."""


_EMPTY = Record({})

REQUESTS: dict[str, RequestSpec] = {
    "hello": RequestSpec(
        Record({"client": Str(max_len=128)}, defaults={"client": ""}),
        "version negotiation; server, device, backends, endpoints, limits, job kinds"),
    "ping": RequestSpec(_EMPTY, "liveness check; returns the server time"),
    "list.datasets": RequestSpec(_EMPTY, "dataset folders under datasets/"),
    "list.runs": RequestSpec(_EMPTY, "run folders under runs/"),
    "list.sequences": RequestSpec(_EMPTY, "sequence folders under sequences/"),
    "list.files": RequestSpec(
        Record({"path": RelPath(allow_root=True)}, defaults={"path": ""}),
        "entries of one folder: name, kind, size, mtime"),
    "job.submit": RequestSpec(
        Record({"kind": Str(min_len=1, max_len=32, pattern=KIND_PATTERN), "params": JsonMap()},
               defaults={"params": dict}),
        "queue a job of a kind listed by hello; returns its record", idempotent=False),
    "job.status": RequestSpec(Record({"job": JOB_ID}), "one job record with the tail of its log"),
    "job.list": RequestSpec(
        Record({"states": ListOf(Str(choices=JOB_STATES), max_len=len(JOB_STATES)),
                "limit": Int(min=1, max=10_000)},
               defaults={"states": list, "limit": 200}),
        "job records, newest first"),
    "job.cancel": RequestSpec(Record({"job": JOB_ID}), "cancel a queued or running job", idempotent=False),
    "job.resume": RequestSpec(Record({"job": JOB_ID}), "re-queue a failed, cancelled or interrupted job",
                              idempotent=False),
    "fetch.file": RequestSpec(
        Record({"path": RelPath(), "offset": Int(min=0), "length": Int(min=1, max=MAX_CHUNK_BYTES)},
               defaults={"offset": 0, "length": DEFAULT_CHUNK_BYTES}),
        "one chunk of a file; the bytes follow the body as a buffer frame"),
    "fetch.info": RequestSpec(
        Record({"path": RelPath(), "array": Str(min_len=1, max_len=64, pattern=ARRAY_NAME_PATTERN)},
               defaults={"array": "vertices"}),
        "dtype and shape of ARRAY.npy in a folder"),
    "fetch.frames": RequestSpec(
        Record({"path": RelPath(), "array": Str(min_len=1, max_len=64, pattern=ARRAY_NAME_PATTERN),
                "start": Int(min=0), "stop": Int(min=0), "dtype": Str(choices=FRAME_DTYPES)},
               defaults={"array": "vertices", "dtype": "float32"}),
        "frames [start, stop) of ARRAY.npy as float32/float16; the array follows as a buffer frame"),
    "upload.begin": RequestSpec(
        Record({"path": RelPath(), "size": Int(min=0),
                "sha256": Str(min_len=64, max_len=64, pattern=SHA256_PATTERN)}),
        "start or resume sending a file to PATH; returns upload_id, chunk_bytes and received"),
    "upload.chunk": RequestSpec(
        Record({"upload_id": UPLOAD_ID, "offset": Int(min=0), "data": Bytes(max_len=MAX_UPLOAD_CHUNK_BYTES)}),
        "append bytes at offset (must equal received); the bytes travel inside the body", idempotent=False),
    "upload.finish": RequestSpec(
        Record({"upload_id": UPLOAD_ID}),
        "verify size and sha256, then move the file into place atomically", idempotent=False),
    "upload.abort": RequestSpec(Record({"upload_id": UPLOAD_ID}), "discard a partial upload"),
    "bake.exact": RequestSpec(
        Record({"run": RelPath(), "names": ListOf(Str(min_len=1, max_len=64), max_len=MAX_CONTROLS),
                "controls": Array(ndim=2, max_items=MAX_BAKE_VALUES), "start": Int(min=0),
                "stop": Nullable(Int(min=1)), "out": RelPath(), "device": Str(choices=("auto", "cpu", "cuda"))},
               defaults={"start": 0, "stop": None, "device": "auto"}),
        "queue a bake job: the true DynTet meshes of rows [start, stop) of edited control curves (the rows "
        "around them are context for the expression windows), written to OUT/vertices.npy", idempotent=False),
    "shutdown": RequestSpec(_EMPTY, "stop the server (running jobs are stopped and marked interrupted)",
                            idempotent=False),
}
"""Request type → spec. Generate/export requests will join as job kinds (``job.submit``)."""
