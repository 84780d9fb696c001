"""The dispatch table: request type → handler. Parameters arrive already validated against
``dyntet_protocol.messages.REQUESTS``; a handler returns ``(result map, buffer frames)`` or raises
``ProtocolError``. Handlers stay short: the work lives in ``catalog``, ``fetch``, ``uploads`` and the job
manager.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from dyntet import __version__
from dyntet_protocol import PROTOCOL_VERSION, SUPPORTED_PROTOCOLS
from dyntet_protocol import constants as C

from . import catalog, fetch
from .bake import stage_curves
from .jobs.kinds import JOB_KINDS

if TYPE_CHECKING:
    from .app import Server

Result = tuple[dict[str, Any], list[Any]]
Handler = Callable[["Server", dict[str, Any]], Result]


def hello(server: "Server", params: dict[str, Any]) -> Result:
    if params["client"]:
        server.log.info("hello from %r", params["client"])
    return {
        "protocol": PROTOCOL_VERSION, "supported_protocols": list(SUPPORTED_PROTOCOLS),
        "server": "dyntet", "server_version": __version__, "server_id": server.server_id,
        "started": server.started, "events_endpoint": server.events_endpoint, "secure": server.secure,
        "workspace": str(server.workspace.root), "capabilities": server.capabilities.result,
        "job_kinds": {name: kind.describe() for name, kind in JOB_KINDS.items()},
        "limits": {"max_request_bytes": C.MAX_REQUEST_BYTES, "max_chunk_bytes": C.MAX_CHUNK_BYTES,
                   "default_chunk_bytes": C.DEFAULT_CHUNK_BYTES, "max_preview_bytes": C.MAX_PREVIEW_BYTES,
                   "max_running_jobs": server.jobs.max_running, "max_queued_jobs": server.jobs.max_queued,
                   **server.uploads.limits()},
        "heartbeat_interval_s": server.config.heartbeat_interval_s, "heartbeat_liveness": C.HEARTBEAT_LIVENESS,
    }, []


def ping(server: "Server", params: dict[str, Any]) -> Result:
    return {"time": time.time()}, []


def list_datasets(server: "Server", params: dict[str, Any]) -> Result:
    return {"items": catalog.list_datasets(server.workspace)}, []


def list_runs(server: "Server", params: dict[str, Any]) -> Result:
    return {"items": catalog.list_runs(server.workspace)}, []


def list_sequences(server: "Server", params: dict[str, Any]) -> Result:
    return {"items": catalog.list_sequences(server.workspace)}, []


def list_files(server: "Server", params: dict[str, Any]) -> Result:
    items, truncated = catalog.list_files(server.workspace, params["path"])
    return {"path": params["path"], "items": items, "truncated": truncated}, []


def job_submit(server: "Server", params: dict[str, Any]) -> Result:
    server.refuse_new_work()
    record = server.jobs.submit(params["kind"], params["params"])
    return {"job": server.jobs.view(record)}, []


def job_status(server: "Server", params: dict[str, Any]) -> Result:
    return {"job": server.jobs.view(server.jobs.get(params["job"]), with_log=True)}, []


def job_list(server: "Server", params: dict[str, Any]) -> Result:
    records = server.jobs.list(params["states"], params["limit"])
    return {"jobs": [server.jobs.view(r) for r in records]}, []


def job_cancel(server: "Server", params: dict[str, Any]) -> Result:
    return {"job": server.jobs.view(server.jobs.cancel(params["job"]))}, []


def job_resume(server: "Server", params: dict[str, Any]) -> Result:
    server.refuse_new_work()
    return {"job": server.jobs.view(server.jobs.resume(params["job"]))}, []


def fetch_file(server: "Server", params: dict[str, Any]) -> Result:
    return fetch.fetch_file(server.workspace, params["path"], params["offset"], params["length"])


def fetch_info(server: "Server", params: dict[str, Any]) -> Result:
    return fetch.array_info(server.workspace, params["path"], params["array"]), []


def fetch_frames(server: "Server", params: dict[str, Any]) -> Result:
    return fetch.fetch_frames(server.workspace, params["path"], params["array"], params["start"], params["stop"],
                              params["dtype"])


def upload_begin(server: "Server", params: dict[str, Any]) -> Result:
    server.refuse_new_work()
    return server.uploads.begin(params["path"], params["size"], params["sha256"]), []


def upload_chunk(server: "Server", params: dict[str, Any]) -> Result:
    return server.uploads.chunk(params["upload_id"], params["offset"], params["data"]), []


def upload_finish(server: "Server", params: dict[str, Any]) -> Result:
    result = server.uploads.finish(params["upload_id"])
    server.log.info("upload of %s complete (%d bytes%s)", result["path"], result["size"],
                    ", already there" if result["existing"] else "")
    return result, []


def upload_abort(server: "Server", params: dict[str, Any]) -> Result:
    return server.uploads.abort(params["upload_id"]), []


def bake_exact(server: "Server", params: dict[str, Any]) -> Result:
    server.refuse_new_work()
    record = server.jobs.submit("bake", stage_curves(server.workspace, params))
    return {"job": server.jobs.view(record)}, []


def shutdown(server: "Server", params: dict[str, Any]) -> Result:
    server.request_shutdown("shutdown requested by a client")
    return {"stopping": True, "running_jobs": sorted(server.jobs.running)}, []


HANDLERS: dict[str, Handler] = {
    "hello": hello,
    "ping": ping,
    "list.datasets": list_datasets,
    "list.runs": list_runs,
    "list.sequences": list_sequences,
    "list.files": list_files,
    "job.submit": job_submit,
    "job.status": job_status,
    "job.list": job_list,
    "job.cancel": job_cancel,
    "job.resume": job_resume,
    "fetch.file": fetch_file,
    "fetch.info": fetch_info,
    "fetch.frames": fetch_frames,
    "upload.begin": upload_begin,
    "upload.chunk": upload_chunk,
    "upload.finish": upload_finish,
    "upload.abort": upload_abort,
    "bake.exact": bake_exact,
    "shutdown": shutdown,
}
"""Every type of ``dyntet_protocol.messages.REQUESTS`` has exactly one handler (tested)."""
