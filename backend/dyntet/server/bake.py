"""``bake.exact``: edited control curves from a client → a ``bake`` job that regenerates their meshes.

The curves arrive as one array in the request. Job records are JSON and hold only their parameters,
so the curves are staged as ``WORKSPACE/.dyntet/bakes/ID.npz`` (``ID`` = the first 32 hex digits of
their SHA-256: the same curves name the same file) and the job gets the id. Everything here is cheap
and numpy-only: the checks that need the run (its control names) read ``RUN/controls.npz`` only; the
server never loads torch.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from dyntet.formats.atomic import write_bytes_atomic
from dyntet_protocol.errors import ErrorCode, ProtocolError

from .workspace import Workspace

STAGED_DIR = "bakes"
"""Folder of staged curves inside the server's hidden state folder."""
CONTROLS_FILE = "controls.npz"
"""The run's control map (``dyntet rig``), the same name as ``dyntet.rig.fit.CONTROLS_FILE``."""


def staged_path(state_dir: Path, curves_id: str) -> Path:
    return Path(state_dir) / STAGED_DIR / f"{curves_id}.npz"


def stage_curves(ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
    """Check a ``bake.exact`` request's meaning, stage its curves; returns the ``bake`` job's parameters.

    Raises ProtocolError: ``bad_request`` (names and columns disagree, repeated or unknown names, empty or
    out-of-range rows), ``not_found`` (the run has no ``controls.npz``).
    """
    names, controls = list(params["names"]), params["controls"]
    frames = int(controls.shape[0])
    if controls.shape[1] != len(names):
        raise _bad("params.controls", f"one column per name ({len(names)})", f"{controls.shape[1]} columns")
    if len(set(names)) != len(names):
        raise _bad("params.names", "distinct control names", "a repeated name")
    start, stop = params["start"], params["stop"] if params["stop"] is not None else frames
    if not 0 <= start < stop <= frames:
        raise _bad("params.stop", f"0 ≤ start < stop ≤ {frames} (the rows of controls)", f"start {start}, stop {stop}")
    known = run_control_names(ws, params["run"])
    unknown = [n for n in names if n not in known]
    if unknown:
        raise _bad("params.names", f"names of the run's controls ({', '.join(known[:8])}, …)",
                   ", ".join(unknown[:5]))
    buffer = io.BytesIO()
    np.savez(buffer, names=np.array(names), controls=np.ascontiguousarray(controls, np.float32),
             rows=np.array([start, stop], np.int64))
    data = buffer.getvalue()
    curves_id = hashlib.sha256(data).hexdigest()[:32]
    path = staged_path(ws.state_dir, curves_id)
    if not path.is_file():
        write_bytes_atomic(path, data)
    return {"run": params["run"], "curves": curves_id, "out": params["out"], "device": params["device"]}


def run_control_names(ws: Workspace, run: str) -> list[str]:
    """The control names of ``RUN/controls.npz`` (``not_found`` when the run has none)."""
    path = ws.resolve(run, kind="dir") / CONTROLS_FILE
    if not path.is_file():
        raise ProtocolError(ErrorCode.NOT_FOUND, f"{run} has no {CONTROLS_FILE}: run `dyntet rig {run}` first",
                            {"path": run, "expected": CONTROLS_FILE})
    try:
        with np.load(path, allow_pickle=False) as data:
            return [str(n) for n in data["names"]]
    except (OSError, KeyError, ValueError) as exc:
        raise ProtocolError(ErrorCode.INVALID_STATE, f"{run}/{CONTROLS_FILE} cannot be read ({exc}): run "
                            f"`dyntet rig {run}` again", {"path": run}) from None


def load_staged(state_dir: Path, curves_id: str) -> tuple[tuple[str, ...], np.ndarray, slice]:
    """Names, controls float32 [T, C] and the rows to bake of staged curves."""
    with np.load(staged_path(state_dir, curves_id), allow_pickle=False) as data:
        start, stop = (int(v) for v in data["rows"])
        return tuple(str(n) for n in data["names"]), data["controls"].astype(np.float32), slice(start, stop)


def _bad(field: str, expected: str, got: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: expected {expected}, got {got}",
                         {"field": field, "expected": expected, "got": got})
