"""The table of job kinds: name → parameter schema, workspace checks, adapter, scheduling flags.

Adding an operation (generate, export) is one entry here and one adapter in ``targets.py``; the
server, the protocol and the client need no change (clients submit ``job.submit {kind, params}``
and learn the kinds from ``hello``).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import Any, Callable

from dyntet_protocol.errors import ErrorCode, ProtocolError
from dyntet_protocol.schema import Bool, Field, Float, Int, JsonMap, Nullable, Record, RelPath, Str, fail

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
    check_paths: Callable[[dict[str, Any], Workspace], dict[str, str]] | None = None
    """Checks of paths whose meaning depends on other parameters (a drive that is a split name or a path,
    an output that is a file or a folder); returns further outputs by role. Cheap, no torch; raises
    ProtocolError."""

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
            if params[rule.param] is None:  # an optional input left out
                continue
            real = ws.resolve(params[rule.param], kind=rule.kind)
            if rule.contains is not None and not (real / rule.contains).is_file():
                raise ProtocolError(ErrorCode.NOT_FOUND, f"{params[rule.param]} has no {rule.contains}",
                                    {"path": params[rule.param], "expected": rule.contains})
        outputs = {}
        for role, name in self.outputs:
            ws.resolve_output(params[name])
            outputs[role] = params[name]
        if self.check_paths is not None:
            outputs.update(self.check_paths(params, ws))
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


SPLITS = ("train", "test", "all")
"""Drive sources that name a split of the run's own dataset (the same as ``dyntet.generate.drive.SPLITS``,
written out so that defining the schema imports nothing of the generation package)."""


@dataclass(frozen=True)
class SplitOrPath(Field):
    """A split of the run's own dataset by name, or a workspace-relative path (checked like RelPath)."""

    splits: tuple[str, ...] = SPLITS

    def check(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise fail(where, self.describe(), value)
        return value if value in self.splits else RelPath().check(value, where)

    def describe(self) -> str:
        return (", ".join(repr(s) for s in self.splits)
                + " or a workspace-relative dataset folder or video like 'datasets/bob' or 'videos/bob.mp4'")


_FRAMES = re.compile(r"(\d{0,9}):(\d{0,9})")


def _check_generate(params: dict[str, Any]) -> None:
    """A frame range must be non-empty (its bounds against the clip are checked by the job)."""
    frames = params["frames"]
    if frames is None:
        return
    start, stop = _FRAMES.fullmatch(frames).groups()  # the field's pattern guarantees the match
    if start and stop and int(stop) <= int(start):
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"params.params.frames: {frames!r} is empty: STOP must be greater than START",
                            {"field": "params.params.frames", "expected": "START:STOP with START < STOP",
                             "got": frames})


def _generate_paths(params: dict[str, Any], ws: Workspace) -> dict[str, str]:
    """The drive source exists (a dataset folder or a video file unless it names a split) and ``out`` may be
    (re)written as a sequence folder; a video drive also writes its preprocessed dataset beside ``out``."""
    from dyntet.formats.sequence import writable  # numpy and PIL only; the server never imports torch

    drive, outputs = params["drive"], {}
    if drive not in SPLITS:
        where = "params.params.drive"
        try:
            real = ws.resolve(drive)
        except ProtocolError as exc:
            if exc.code != ErrorCode.NOT_FOUND:
                raise
            raise ProtocolError(ErrorCode.NOT_FOUND,
                                f"{where}: {drive!r} is neither a split ({', '.join(SPLITS)}) nor a dataset folder "
                                "or video in the workspace", {"field": where, "path": drive}) from None
        if real.is_dir() and not (real / "manifest.json").is_file():
            raise ProtocolError(ErrorCode.NOT_FOUND,
                                f"{where}: {drive} is a folder but not a dataset (no manifest.json); preprocess "
                                "the clip first, or pass the video", {"field": where, "path": drive,
                                                                      "expected": "manifest.json"})
        from dyntet.audio.decode import AUDIO_SUFFIXES  # a tuple of names: no numpy work, no torch

        if real.is_file() and not params["audio_only"] and real.suffix.lower() not in AUDIO_SUFFIXES:
            driver = f"{params['out']}.driver"  # where dyntet.generate.drive preprocesses a driving video
            ws.resolve_output(driver)
            outputs["driver"] = driver
    if not writable(ws.resolve_output(params["out"])):
        raise ProtocolError(ErrorCode.INVALID_STATE,
                            f"{params['out']} exists and is not a sequence folder; refusing to replace it",
                            {"path": params["out"]})
    return outputs


def _check_export(params: dict[str, Any]) -> None:
    """Option combinations the exporters do not have are refused, not ignored."""
    problem = None
    if params["format"] == "obj" and params["rig"] != "per-frame":
        problem = ("rig", "'per-frame' for format 'obj' (OBJ has no blend shapes)")
    elif params["targets"] is not None and params["rig"] != "pca":
        problem = ("targets", "nil unless rig is 'pca'")
    elif params["format"] == "glb" and not params["out"].lower().endswith(".glb"):
        problem = ("out", "a file name ending in .glb for format 'glb'")
    if problem is not None:
        where = f"params.params.{problem[0]}"
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}: expected {problem[1]}",
                            {"field": where, "expected": problem[1], "got": str(params[problem[0]])[:200]})


def _export_paths(params: dict[str, Any], ws: Workspace) -> dict[str, str]:
    """A ``.glb`` may replace a file but not a folder; an OBJ sequence needs a new or empty folder."""
    out = params["out"]
    if params["format"] == "glb":
        if ws.resolve(out, must_exist=False).is_dir():
            raise ProtocolError(ErrorCode.INVALID_STATE, f"{out} is a folder; name the .glb file to write",
                                {"path": out})
    else:
        real = ws.resolve_output(out)
        if real.exists() and any(real.iterdir()):
            raise ProtocolError(ErrorCode.INVALID_STATE,
                                f"{out} is not empty; an OBJ sequence needs a new or empty folder", {"path": out})
    return {"export": out}


def _bake_paths(params: dict[str, Any], ws: Workspace) -> dict[str, str]:
    """The staged curves exist (``bake.exact`` made them) and ``out`` may be (re)written as a bake folder."""
    from dyntet.formats.bake import bake_writable  # numpy only
    from ..bake import staged_path

    if not staged_path(ws.state_dir, params["curves"]).is_file():
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no staged curves {params['curves']}: send them with bake.exact",
                            {"field": "params.params.curves", "got": params["curves"]})
    if not bake_writable(ws.resolve_output(params["out"])):
        raise ProtocolError(ErrorCode.INVALID_STATE,
                            f"{params['out']} exists and is not a bake folder; refusing to replace it",
                            {"path": params["out"]})
    return {"bake": params["out"]}


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
        params=Record({"video": RelPath(), "out": RelPath(), "options": JsonMap(), "audio": Nullable(RelPath())},
                      defaults={"options": dict, "audio": None}),
        inputs=(PathRule("video", "file"), PathRule("audio", "file")), outputs=(("dataset", "out"),),
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
    "generate": JobKind(
        name="generate",
        summary="drive a trained avatar with a split of its clip, another dataset, a video or a voice recording; "
                "writes a sequence folder",
        target=f"{_TARGETS}:generate",
        params=Record({"run": RelPath(), "drive": SplitOrPath(), "out": RelPath(),
                       "frames": Nullable(Str(max_len=19, pattern=_FRAMES.pattern)),
                       "pose": Str(choices=("driver", "target")), "texture_size": Int(min=64, max=8192),
                       "device": _DEVICE, "audio_only": Bool()},
                      defaults={"frames": None, "pose": "driver", "texture_size": 1024, "device": "auto",
                                "audio_only": False}),
        inputs=(PathRule("run", "dir", "config.json"), PathRule("run", "dir", "checkpoints/last.pt")),
        outputs=(("sequence", "out"),), requires="dyntet.generate.api",
        validate=_check_generate, check_paths=_generate_paths),
    "export": JobKind(
        name="export",
        summary="export a sequence folder as a glTF binary (.glb, per-frame or PCA morph targets) or an OBJ "
                "sequence",
        target=f"{_TARGETS}:export",
        params=Record({"sequence": RelPath(), "format": Str(choices=("glb", "obj")),
                       "rig": Str(choices=("per-frame", "pca")), "targets": Nullable(Int(min=1, max=1024)),
                       "out": RelPath(), "head_pose": Bool(), "textures": Bool()},
                      defaults={"format": "glb", "rig": "per-frame", "targets": None, "head_pose": True,
                                "textures": True}),
        inputs=(PathRule("sequence", "dir", "manifest.json"),), requires="dyntet.export.gltf",
        validate=_check_export, check_paths=_export_paths),
    "bake": JobKind(
        name="bake",
        summary="the true DynTet meshes of edited control curves (made by bake.exact); writes a bake folder",
        target=f"{_TARGETS}:bake",
        params=Record({"run": RelPath(), "curves": Str(min_len=32, max_len=32, pattern=r"[0-9a-f]{32}"),
                       "out": RelPath(), "device": _DEVICE}, defaults={"device": "auto"}),
        inputs=(PathRule("run", "dir", "config.json"), PathRule("run", "dir", "checkpoints/last.pt"),
                PathRule("run", "dir", "controls.npz")),
        requires="dyntet.rig.bake", check_paths=_bake_paths),
}
"""Job kinds by name."""

__all__ = ["JOB_KINDS", "SPLITS", "JobKind", "PathRule", "SplitOrPath"]
