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

from dyntet.progress import Cancelled, Progress, ProgressFn, StopFn


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
    audio = None if params.get("audio") is None else workspace / params["audio"]
    run(workspace / params["video"], workspace / params["out"], options, progress=progress, should_stop=should_stop,
        audio=audio)
    return {"dataset": params["out"]}


def train(params: dict[str, Any], *, workspace: Path, resume: bool, progress: ProgressFn,
          should_stop: StopFn) -> dict[str, Any]:
    from dyntet.train.api import train as run

    from dyntet.formats.run import RunFolder

    run_dir = workspace / params["run"]
    resume = resume and RunFolder(run_dir).has_checkpoint()  # same rule as `dyntet train --resume`
    run(workspace / params["dataset"], run_dir, preset=params["preset"], overrides=dict(params["overrides"]) or None,
        device=params["device"], resume=resume, progress=progress, should_stop=should_stop)
    return {"run": params["run"], "resumed": resume}


def generate(params: dict[str, Any], *, workspace: Path, resume: bool, progress: ProgressFn,
             should_stop: StopFn) -> dict[str, Any]:
    """``dyntet.generate.api.generate``; a resumed job starts again (a video driver's dataset is reused)."""
    from dyntet.generate.api import GenerateConfig
    from dyntet.generate.api import generate as run
    from dyntet.generate.bake import BakeConfig
    from dyntet.generate.drive import SPLITS, DriveOptions, FrameRange
    from dyntet.formats.sequence import read_sequence

    drive = params["drive"] if params["drive"] in SPLITS else str(workspace / params["drive"])
    config = GenerateConfig(
        drive=drive, drive_options=DriveOptions(frames=FrameRange.parse(params["frames"]), pose=params["pose"],
                                                audio_only=bool(params.get("audio_only"))),
        bake=BakeConfig(size=params["texture_size"]), device=params["device"])
    out = run(workspace / params["run"], workspace / params["out"], config, progress=progress,
              should_stop=should_stop)
    seq = read_sequence(out)
    result = {"sequence": params["out"], "num_frames": seq.num_frames, "num_vertices": seq.num_vertices,
              "num_faces": seq.num_faces, "fps": float(seq.fps), "has_audio": seq.audio is not None}
    if (seq.source.get("drive") or {}).get("kind") == "video":  # preprocessed beside the sequence
        result["driver"] = f"{params['out']}.driver"
    return result


def export(params: dict[str, Any], *, workspace: Path, resume: bool, progress: ProgressFn,
           should_stop: StopFn) -> dict[str, Any]:
    """``write_glb`` or ``write_obj_sequence``; stopping is honoured at each progress report (the writers
    leave no partial file behind)."""
    from dyntet.formats.sequence import read_sequence

    seq = read_sequence(workspace / params["sequence"])
    out = workspace / params["out"]
    report = _stoppable(progress, should_stop)
    report(Progress("read", 1, 1, f"{seq.num_frames} frames of {seq.num_vertices} vertices"))
    if params["format"] == "obj":
        from dyntet.export.obj import ObjConfig, write_obj_sequence

        paths = write_obj_sequence(out, seq, ObjConfig(apply_head_pose=params["head_pose"],
                                                       textures=params["textures"]), progress=report)
        return {"format": "obj", "path": params["out"], "num_files": len(paths)}
    from dyntet.export.gltf import GltfConfig, write_glb
    from dyntet.export.pca import PcaConfig

    config = GltfConfig(rig=params["rig"], pca=PcaConfig(num_targets=params["targets"]),
                        animate_head_pose=params["head_pose"], textures=params["textures"])
    written = write_glb(out, seq, config, progress=report)
    pca = None if written.pca is None else {k: float(v) if isinstance(v, float) else int(v)
                                            for k, v in dataclasses.asdict(written.pca).items()}
    return {"format": "glb", "path": params["out"], "size_bytes": int(written.size_bytes),
            "num_targets": int(written.num_targets), "num_vertices": int(written.num_vertices), "pca": pca}


def bake(params: dict[str, Any], *, workspace: Path, resume: bool, progress: ProgressFn,
         should_stop: StopFn) -> dict[str, Any]:
    """``dyntet.rig.bake.bake_run`` on the curves ``bake.exact`` staged; a resumed job starts again."""
    from dyntet.formats.bake import write_bake
    from dyntet.rig.bake import bake_run

    from ..bake import load_staged
    from ..workspace import STATE_DIR

    names, controls, rows = load_staged(workspace / STATE_DIR, params["curves"])
    vertices = bake_run(workspace / params["run"], names, controls, rows, device=params["device"],
                        progress=progress, should_stop=should_stop)
    write_bake(workspace / params["out"], vertices, {"names": list(names), "start": rows.start, "stop": rows.stop,
                                                     "run": params["run"], "curves": params["curves"]})
    return {"bake": params["out"], "num_frames": int(vertices.shape[0]), "num_vertices": int(vertices.shape[1]),
            "start": rows.start, "stop": rows.stop}


def _stoppable(progress: ProgressFn, should_stop: StopFn) -> ProgressFn:
    """``progress`` that raises :class:`Cancelled` once ``should_stop()`` is true (for library functions that
    report progress but take no ``should_stop``)."""

    def report(update: Progress) -> None:
        if should_stop():
            raise Cancelled(f"stopped during {update.stage}")
        progress(update)

    return report


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
