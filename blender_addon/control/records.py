"""Protocol job records and events → panel updates. No ``bpy``, no sockets: pure translation.

The server's records and event bodies are documented in ``docs/protocol.md``; fields the panel does
not know are ignored and odd values (None, booleans where numbers belong) become "unknown" rather than
errors, so a newer server never breaks an older add-on's panel.
"""

from __future__ import annotations

from typing import Any

from . import state as st


def update_from_record(record: dict[str, Any]) -> st.JobUpdate:
    """A ``job.status`` / ``job.submit`` record → :class:`~.state.JobUpdate`."""
    progress = record.get("progress") or {}
    error = record.get("error") or {}
    update = update_from_progress(str(record["id"]), progress) if progress else st.JobUpdate(str(record["id"]))
    return st.JobUpdate(
        job_id=str(record["id"]),
        kind=record.get("kind"),
        state=record.get("state"),
        stage=update.stage,
        step=update.step,
        total=update.total,
        message=update.message,
        eta_s=update.eta_s,
        metrics=update.metrics,
        result=record.get("result") if isinstance(record.get("result"), dict) else None,
        error_code=error.get("code") if isinstance(error, dict) else None,
        error_message=error.get("message") if isinstance(error, dict) else None,
        node=_opt_str(record.get("node")),
    )


def update_from_progress(job_id: str, data: dict[str, Any]) -> st.JobUpdate:
    """A ``progress`` event's data (or a record's ``progress``) → :class:`~.state.JobUpdate`."""
    metrics = data.get("metrics")
    eta = data.get("eta_s")
    return st.JobUpdate(
        job_id=job_id,
        state="running",
        stage=_opt_str(data.get("stage")),
        step=_opt_int(data.get("step")),
        total=_opt_int(data.get("total")),
        message=_opt_str(data.get("message")),
        eta_s=float(eta) if isinstance(eta, (int, float)) and not isinstance(eta, bool) else None,
        metrics={str(k): float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        if isinstance(metrics, dict) else None,
    )


def update_from_event(job_id: str, event_type: str, data: dict[str, Any]) -> st.JobUpdate:
    """A ``state`` / ``done`` / ``failed`` event → :class:`~.state.JobUpdate` (when the record is unavailable)."""
    if event_type == "done":
        return st.JobUpdate(job_id, state="done", result=data.get("result") if isinstance(data.get("result"), dict) else None)
    if event_type == "failed":
        error = data.get("error") if isinstance(data.get("error"), dict) else data
        return st.JobUpdate(job_id, state="failed", error_code=_opt_str(error.get("code")),
                            error_message=_opt_str(error.get("message")))
    state = data.get("state")
    return st.JobUpdate(job_id, state=state if state in st.TERMINAL + ("queued", "running") else None,
                        node=_opt_str(data.get("node")))


def _opt_str(value: Any) -> str | None:
    return str(value) if value is not None else None


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def names(items: list[Any]) -> list[str]:
    """Folder names from a ``list.*`` reply, sorted, leaving out incomplete folders."""
    names = []
    for item in items:
        if isinstance(item, dict):
            if item.get("complete") is False:  # an interrupted stage: not usable yet
                continue
            name = item.get("name") or item.get("path")
        else:
            name = item
        if name:
            names.append(str(name).rstrip("/").rsplit("/", 1)[-1])
    return sorted(names)


def error_code(exc: BaseException) -> str:
    """The protocol error code of an exception (``"timeout"``, ``"not_found"``, …), empty for others."""
    code = getattr(exc, "code", "")
    return str(getattr(code, "value", code) or "")
