"""The table of job kinds: name → parameter schema, workspace checks, adapter, scheduling flags.

Adding an operation (generate, export) is one entry here and one adapter in ``targets.py``; the
server, the protocol and the client need no change (clients submit ``job.submit {kind, params}``
and learn the kinds from ``hello``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

from dyntet_protocol.errors import ErrorCode, ProtocolError
from dyntet_protocol.schema import Float, Int, JsonMap, Nullable, Record, RelPath, Str

from ..workspace import PathKind, Workspace

_TARGETS = "dyntet.server.jobs.targets"


@dataclass(frozen=True)
class PathRule:
    """A path parameter the job reads (``kind`` must exist) and optionally a file it must contain."""

    param: str
    kind: PathKind
    contains: str | None = None


@dataclass(frozen=True)
class JobKind:
    name: str
    summary: str
    target: str
    """``module:function`` of the adapter (see ``targets.py``)."""
    params: Record
    inputs: tuple[PathRule, ...] = ()
    outputs: tuple[tuple[str, str], ...] = ()
    """``(role, param)`` of each folder the job writes."""
    requires: str | None = None
    """A module that must be importable for this kind to be available."""
    heavy: bool = True
    """Heavy jobs share the queue (one at a time by default)."""
    resumable: bool = False
    """``job.resume`` continues where the job stopped (from a checkpoint or a cache) instead of starting over."""
    checkpoint: str | None = None
    """Checkpoint file relative to the first output folder."""
    validate: Callable[[dict[str, Any]], None] | None = None
    """Extra checks of the parameters' meaning (cheap, no torch); raises ProtocolError."""

    def available(self) -> bool:
        if self.requires is None:
            return True
        try:
            return importlib.util.find_spec(self.requires) is not None
        except (ImportError, ValueError):
            return False

    def check(self, params: Any, ws: Workspace) -> tuple[dict[str, Any], dict[str, str]]:
        """Validate ``params`` and the paths they name; returns ``(params, outputs by role)``.

        Raises ProtocolError (``bad_request``, ``path_refused``, ``not_found``, ``invalid_state``).
        """
        params = self.params.check(params, "params.params")
        if self.validate is not None:
            self.validate(params)
        for rule in self.inputs:
            real = ws.resolve(params[rule.param], kind=rule.kind)
            if rule.contains is not None and not (real / rule.contains).is_file():
                raise ProtocolError(ErrorCode.NOT_FOUND, f"{params[rule.param]} has no {rule.contains}",
                                    {"path": params[rule.param], "expected": rule.contains})
        outputs = {}
        for role, name in self.outputs:
            ws.resolve_output(params[name])
            outputs[role] = params[name]
        return params, outputs

    def checkpoint_path(self, outputs: dict[str, str]) -> str | None:
        if self.checkpoint is None or not self.outputs:
            return None
        return f"{outputs[self.outputs[0][0]]}/{self.checkpoint}"

    def describe(self) -> dict[str, Any]:
        """What ``hello`` tells clients about this kind."""
        return {"summary": self.summary, "available": self.available(), "resumable": self.resumable,
                "heavy": self.heavy, "params": {name: spec.describe() for name, spec in self.params.fields.items()},
                "defaults": {k: (v() if callable(v) else v) for k, v in self.params.defaults.items()}}


_DEVICE = Str(choices=("auto", "cpu", "cuda"))


def _check_training_settings(params: dict[str, Any]) -> None:
    """Unknown presets and settings are refused at submit time, not minutes later in the job."""
    try:
        from dyntet.train.config import preset
    except ImportError:
        return  # training is not installed: the kind is unavailable anyway
    try:
        preset(params["preset"]).with_overrides({"device": params["device"], **params["overrides"]})
    except (ValueError, TypeError) as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"params.params: {exc}",
                            {"field": "params.params", "preset": params["preset"]}) from None

JOB_KINDS: dict[str, JobKind] = {
    "selftest": JobKind(
        name="selftest",
        summary="a short CPU job with a known answer: checks that this backend can run, checkpoint and resume jobs",
        target=f"{_TARGETS}:selftest",
        params=Record(
            {"run": RelPath(), "steps": Int(min=1, max=1_000_000), "step_s": Float(min=0, max=60),
             "size": Int(min=1, max=1024), "checkpoint_every": Int(min=1, max=1_000_000),
             "seed": Int(min=0, max=2**32 - 1), "fail_at": Nullable(Int(min=0, max=1_000_000)),
             "fail_with": Str(choices=("error", "memory", "crash", "abort"))},
            defaults={"steps": 50, "step_s": 0.05, "size": 64, "checkpoint_every": 10, "seed": 0,
                      "fail_at": None, "fail_with": "error"}),
        outputs=(("run", "run"),), resumable=True, checkpoint="selftest_checkpoint.npz"),
    "preprocess": JobKind(
        name="preprocess",
        summary="track the face in a video and write a dataset folder",
        target=f"{_TARGETS}:preprocess",
        params=Record({"video": RelPath(), "out": RelPath(), "options": JsonMap()}, defaults={"options": dict}),
        inputs=(PathRule("video", "file"),), outputs=(("dataset", "out"),),
        requires="dyntet.face.preprocess", resumable=True),
    "train": JobKind(
        name="train",
        summary="fit a DynTet avatar to a dataset folder, writing a run folder with checkpoints",
        target=f"{_TARGETS}:train",
        params=Record({"dataset": RelPath(), "run": RelPath(),
                       "preset": Str(min_len=1, max_len=64, pattern=r"[A-Za-z0-9_-]+"),
                       "overrides": JsonMap(), "device": _DEVICE},
                      defaults={"preset": "preview", "overrides": dict, "device": "auto"}),
        inputs=(PathRule("dataset", "dir", "manifest.json"),), outputs=(("run", "run"),),
        requires="dyntet.train.api", resumable=True, checkpoint="checkpoints/last.pt",
        validate=_check_training_settings),
}
"""Job kinds by name. Generate/export join here when their library functions exist."""

__all__ = ["JOB_KINDS", "JobKind", "PathRule"]
