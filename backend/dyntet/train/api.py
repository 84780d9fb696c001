"""The training entry point used by the CLI and the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dyntet.formats.run import RunFolder, RunFolderError
from dyntet.progress import ProgressFn, StopFn
from dyntet.train.config import TrainConfig, preset as preset_config, resume_overrides


def train(dataset: Path, run: Path, *, preset: str = "preview", overrides: dict[str, Any] | None = None,
          device: str = "auto", resume: bool = False, force: bool = False, progress: ProgressFn | None = None,
          should_stop: StopFn | None = None) -> Path:
    """Train a DynTet avatar on ``dataset`` into the run folder ``run``.

    With ``resume=True`` and a checkpoint in ``run``, the run's own ``config.json`` is used (only
    ``iterations`` and ``minutes`` may change, see :func:`resume_overrides`) and training continues where it
    stopped. Without ``resume``, a run folder that already holds a checkpoint is refused unless ``force``
    (which starts it again). The run folder is locked while training writes it.
    Raises :class:`dyntet.progress.Cancelled` after saving when ``should_stop()`` turns true.
    """
    from dyntet.train.trainer import Trainer

    folder = RunFolder(run)
    overrides = dict(overrides or {})
    if resume and not force and not folder.config_path.exists():
        raise RunFolderError(f"there is no run to resume in {folder.root} (no {folder.config_path.name}): "
                             "train it first (drop --resume and give the DATASET folder)")
    if not resume and not force and folder.has_checkpoint():
        raise RunFolderError(f"{folder.root} already holds a trained run (checkpoint {folder.checkpoint_path}); "
                             "continue it with --resume, train into another folder, or pass --force to "
                             "start it again (its checkpoint is then lost)")
    with folder.lock("training"):
        if resume and folder.config_path.exists():
            saved = folder.read_config()
            config = TrainConfig.from_dict(saved["train"])
            config = config.with_overrides({"device": device, **resume_overrides(config, overrides)})
            dataset = Path(saved["dataset"]) if dataset is None else Path(dataset)
        else:
            if dataset is None:
                raise RunFolderError("give the DATASET folder to train on")
            config = preset_config(preset).with_overrides({"device": device, **overrides})
        trainer = Trainer(Path(dataset), folder.root, config, resume=resume)
        trained = trainer.train(progress=progress, should_stop=should_stop)
        fit_audio_stage(trained, progress)
        return trained


def fit_audio_stage(run: Path, progress: ProgressFn | None) -> None:
    """The last stage: the audio → expression model, when the footage has sound (seconds of work).

    A clip without audio is not an error — the avatar then cannot be driven by a voice, which
    ``dyntet audio-fit`` says when asked."""
    from dyntet.audio.model import AudioModelError
    from dyntet.audio.run_model import fit_run_audio, run_dataset
    from dyntet.progress import Progress

    try:
        if run_dataset(run).audio_path is None:
            return
        fit_run_audio(run, progress=progress)
    except AudioModelError as exc:
        if progress is not None:
            progress(Progress("audio", 0, 1, f"audio model not fitted: {exc}"))
