"""``generate``: a trained run + a driving source → a sequence folder (the entry point of CLI and server).

Pipeline: open the run → resolve the driving clip (:mod:`.drive`) → cache the frame-independent geometry
(:mod:`.geometry`) → per-frame vertices in batches → UV atlas and baked textures of the canonical mesh
(:mod:`.bake`) → the learned light as an equirectangular HDR → a PCA blend-shape rig of the vertices
(``rig.npz``, :mod:`dyntet.export.pca`: what the add-on's *PCA Rig* import and ``export --rig pca`` read) →
:func:`~dyntet.formats.sequence.write_sequence`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from dyntet import __version__
from dyntet.formats.dataset import DatasetError
from dyntet.export.pca import PcaConfig, fit_pca_rig
from dyntet.generate.bake import BakeConfig, bake_textures, uv_atlas
from dyntet.generate.drive import DriveError, DriveOptions, DriveSource, DrivingClip, driving_clip
from dyntet.generate.geometry import FrozenGeometry
from dyntet.generate.pose import rigid_inverse
from dyntet.formats.sequence import Sequence, writable, write_sequence
from dyntet.model.dyntet import expression_windows
from dyntet.progress import Cancelled, Progress, ProgressFn, StopFn
from dyntet.train.evaluate import LoadedRun, load_run


class GenerateError(ValueError):
    """Generation cannot start or continue; the message says what to do (the CLI prints it as is)."""


@dataclass
class GenerateConfig:
    """Settings of :func:`generate`."""

    drive: str = "test"
    """``train``, ``test``, ``all``, a dataset folder or a video file (see :mod:`dyntet.generate.drive`)."""
    drive_options: DriveOptions = field(default_factory=DriveOptions)
    bake: BakeConfig = field(default_factory=BakeConfig)
    environment_height: int = 256
    """Rows of the equirectangular environment map (its width is twice that)."""
    batch_frames: int = 16
    """Frames decoded at once by the geometry path."""
    device: str = "auto"
    pca: PcaConfig | None = field(default_factory=PcaConfig)
    """The blend-shape rig written as ``rig.npz`` (K picked by its error tolerance by default); None writes none."""

    def __post_init__(self) -> None:
        if not isinstance(self.environment_height, int) or not 8 <= self.environment_height <= 4096:
            raise ValueError(f"environment_height must be an int in 8..4096, got {self.environment_height!r}")
        if not isinstance(self.batch_frames, int) or self.batch_frames < 1:
            raise ValueError(f"batch_frames must be a positive int, got {self.batch_frames!r}")


def open_run(run: Path, device: str = "auto") -> LoadedRun:
    """:func:`dyntet.train.evaluate.load_run` with errors a user can act on (:class:`GenerateError`)."""
    run = Path(run)
    if not run.is_dir():
        raise GenerateError(f"run folder {run} does not exist: train one with `dyntet train DATASET -o {run}`")
    try:
        loaded = load_run(run, device)
    except (FileNotFoundError, DatasetError) as exc:
        raise GenerateError(str(exc)) from None
    except (KeyError, ValueError, RuntimeError) as exc:
        raise GenerateError(f"{run}: the run folder cannot be loaded ({exc})") from None
    loaded.model.eval()
    return loaded


def resolve_clip(loaded: LoadedRun, drive: str, options: DriveOptions, output: Path,
                 progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> DrivingClip:
    """The driving clip of ``drive`` for this run, with :class:`GenerateError` for bad sources."""
    if options.run is None:
        options = replace(options, run=loaded.run)
    try:
        return driving_clip(loaded.dataset, loaded.model.mean_expression.cpu().numpy(), DriveSource.parse(drive, options.audio_only),
                            options, output=output, progress=progress, should_stop=should_stop)
    except DriveError as exc:
        raise GenerateError(str(exc)) from None


def clip_windows(loaded: LoadedRun, clip: DrivingClip) -> torch.Tensor:
    """Expression windows of the clip's frames: float32 [T, W, K] on the model's device."""
    expression = torch.from_numpy(clip.expression).to(loaded.model.grid_vertices.device)
    frames = torch.from_numpy(clip.frames).to(expression.device)
    return expression_windows(expression, frames, loaded.config.model.geometry.expression_window)


def generate(run: Path, out: Path, config: GenerateConfig | None = None, progress: ProgressFn | None = None,
             should_stop: StopFn | None = None) -> Path:
    """Drive a trained avatar and write the result as a sequence folder (``docs/dataset-format.md``).

    Args:
        run: the run folder (``dyntet train``).
        out: the sequence folder to write (an existing *sequence* folder is replaced, atomically).
        config: :class:`GenerateConfig`.
        progress: reports per stage: ``drive`` (preprocessing a video), ``geometry`` (frames),
            ``atlas``, ``bake``, ``pca`` (the rig), ``write``.
        should_stop: polled between batches; when it returns True, :class:`Cancelled` is raised and
            nothing is written.

    Returns:
        ``out``.

    Raises:
        GenerateError: missing or broken run, unknown drive source, bad frame range, incompatible faces.
        Cancelled: ``should_stop`` asked to stop.
    """
    config = config or GenerateConfig()
    out = Path(out)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    if not writable(out):
        raise GenerateError(f"{out} exists and is not a sequence folder; refusing to replace it — choose another "
                            "output path")
    loaded = open_run(run, config.device)
    model = loaded.model
    clip = resolve_clip(loaded, config.drive, config.drive_options, out, progress, should_stop)
    lap("drive")
    geometry = FrozenGeometry.from_model(model)
    windows = clip_windows(loaded, clip)
    vertices = np.empty((clip.num_frames, geometry.num_vertices, 3), np.float32)
    done = 0
    for batch in geometry.iter_vertices(windows, config.batch_frames):
        _check_stop(should_stop, "generation")
        vertices[done:done + len(batch)] = batch.cpu().numpy()
        done += len(batch)
        _report(progress, "geometry", done, clip.num_frames, f"{geometry.num_vertices} vertices per frame")
    lap("geometry")
    canonical = geometry.canonical
    _report(progress, "atlas", 0, 1, f"UV atlas of {geometry.num_faces} faces")
    atlas = uv_atlas(canonical.cpu().numpy(), geometry.faces_int32(), config.bake.size, config.bake.atlas_padding,
                     config.bake.atlas_smoothing)
    _report(progress, "atlas", 1, 1, f"{len(atlas.uv)} UV vertices")
    lap("atlas")
    _check_stop(should_stop, "baking")
    textures = bake_textures(model, canonical, atlas, config.bake, progress)
    lap("bake")
    environment = model.light.to_equirect(config.environment_height).astype(np.float32)
    rig, rig_error = None, None
    if config.pca is not None:
        _check_stop(should_stop, "the rig")
        rig, report = fit_pca_rig(vertices, config.pca, progress)
        rig_error = {"num_targets": report.num_targets, "rms_mm": round(report.rms_mm, 4),
                     "max_mm": round(report.max_mm, 4)}
        lap("rig")
    seq = Sequence(
        faces=geometry.faces_int32(), vertices=vertices, head_pose=clip.head_to_scene, fps=clip.fps,
        uv=atlas.uv, uv_faces=atlas.uv_faces, base_color=textures.base_color, orm=textures.orm,
        environment=environment, audio=clip.audio, rig=rig,
        camera={"intrinsics": [float(x) for x in clip.intrinsics], "size": int(clip.size),
                "camera_to_scene": rigid_inverse(clip.scene_to_camera).tolist()},
        source={"tool": f"dyntet {__version__} generate", "run": str(Path(run).resolve()),
                **clip.source, "texture_size": config.bake.size,
                "texture_coverage": round(float(textures.coverage.mean()), 4), "rig": rig_error,
                "timings_s": timings})
    _check_stop(should_stop, "writing")
    _report(progress, "write", 0, 1, f"writing {out}")
    write_sequence(out, seq)
    from dyntet.rig.sequence_rig import write_sequence_rig

    write_sequence_rig(out, loaded.run, clip.expression[clip.frames])  # named controls, when `dyntet rig` ran
    _report(progress, "write", 1, 1, f"{clip.num_frames} frames")
    return out


def _check_stop(should_stop: StopFn | None, what: str) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled(f"{what} stopped")


def _report(progress: ProgressFn | None, stage: str, step: int, total: int, message: str) -> None:
    if progress is not None:
        progress(Progress(stage, step, total, message))
