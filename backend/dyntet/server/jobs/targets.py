"""Adapters from a job's validated parameters to the library functions, run inside the job's process.

Every adapter has the same signature::

    fn(params: dict, *, workspace: Path, resume: bool, progress: ProgressFn, should_stop: StopFn) -> dict

``params`` holds workspace-relative paths (already confined by the server); the returned map must be
JSON-like and name paths workspace-relative. Heavy libraries are imported inside the adapter, so the
server process never loads torch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dyntet.progress import ProgressFn, StopFn


def selftest(params: dict[str, Any], *, workspace: Path, resume: bool, progress: ProgressFn,
             should_stop: StopFn) -> dict[str, Any]:
    from .selftest import SelftestConfig, run_selftest

    config = SelftestConfig(**{k: v for k, v in params.items() if k != "run"})
    result = run_selftest(workspace / params["run"], config, resume=resume, progress=progress,
                          should_stop=should_stop)
    return {**result, "run": params["run"]}


def preprocess(params: dict[str, Any], *, workspace: Path, resume: bool, progress: ProgressFn,
               should_stop: StopFn) -> dict[str, Any]:
    from dyntet.face.preprocess import PreprocessOptions
    from dyntet.face.preprocess import preprocess as run

    options = _build(PreprocessOptions, params["options"], "options") if params["options"] else None
    # preprocessing resumes by itself from the cache in its output folder: ``resume`` needs no flag
    run(workspace / params["video"], workspace / params["out"], options, progress=progress, should_stop=should_stop)
    return {"dataset": params["out"]}


def train(params: dict[str, Any], *, workspace: Path, resume: bool, progress: ProgressFn,
          should_stop: StopFn) -> dict[str, Any]:
    from dyntet.train.api import train as run

    run_dir = workspace / params["run"]
    resume = resume and (run_dir / "checkpoints" / "last.pt").is_file()
    overrides = dict(params["overrides"])
    if resume:  # a resumed run keeps the settings in its config.json; only its length may change
        overrides = {k: v for k, v in overrides.items() if k == "iterations"}
    run(workspace / params["dataset"], run_dir, preset=params["preset"], overrides=overrides or None,
        device=params["device"], resume=resume, progress=progress, should_stop=should_stop)
    return {"run": params["run"], "resumed": resume}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """``cls(**values)`` for a (nested) dataclass: a map given for a field whose default is itself a
    dataclass builds that one; unknown fields are named in a clear error."""
    if not dataclasses.is_dataclass(cls):
        return cls(**values)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in values.items():
        field = fields[name]
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if isinstance(value, dict) and dataclasses.is_dataclass(default):
            value = _build(type(default), value, f"{where}.{name}")
        kwargs[name] = value
    return cls(**kwargs)
