"""A run's audio model: fitted from the subject's footage (train split only), stored as
``RUN/audio_model.npz``, loaded for driving. Torch-free: it reads datasets, never the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dyntet.audio.decode import AudioError, load_speech
from dyntet.audio.features import frame_times
from dyntet.audio.model import (AUDIO_MODEL_FILE, AudioModel, AudioModelError, OutdatedAudioModel, TrainingClip,
                                fit_audio_model)
from dyntet.formats.dataset import Dataset, DatasetError
from dyntet.progress import ProgressFn

NO_AUDIO_HINT = ("attach the clip's sound with `dyntet preprocess VIDEO -o DATASET --audio SPEECH.wav` "
                 "and fit again with `dyntet audio-fit RUN`")


def run_dataset(run: Path) -> Dataset:
    """The dataset a run was trained on (from ``config.json``)."""
    config_path = Path(run) / "config.json"
    try:
        dataset = json.loads(config_path.read_text())["dataset"]
        return Dataset.open(Path(dataset))
    except FileNotFoundError:
        raise AudioModelError(f"{run} is not a run folder (no config.json): train one with `dyntet train`") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise AudioModelError(f"{config_path} does not name the run's dataset ({exc})") from None
    except (DatasetError, OSError) as exc:
        raise AudioModelError(f"the run's dataset cannot be opened: {exc}") from None


def dataset_clip(dataset: Dataset, frames: range, target: Dataset | None = None) -> TrainingClip:
    """The audio under ``frames`` (a contiguous range) and their α, carried into ``target``'s basis when
    the dataset is another session of the subject."""
    if dataset.audio_path is None:
        raise AudioModelError(f"{dataset.root} has no audio.wav, so it cannot teach the avatar to speak: "
                              f"{NO_AUDIO_HINT}")
    try:
        speech = load_speech(dataset.audio_path)
    except AudioError as exc:
        raise AudioModelError(str(exc)) from None
    index = dataset.tracking.frame_index
    begin_s = float(index[frames.start] - index[0]) / dataset.fps
    end_s = float(index[frames.stop - 1] - index[0] + 1) / dataset.fps
    samples = speech.samples[int(round(begin_s * 16000)):int(round(end_s * 16000))]
    times = (index[frames.start:frames.stop] - index[frames.start] + 0.5) / dataset.fps
    expression = dataset.tracking.expression[frames.start:frames.stop].astype(np.float64)
    if target is not None and target.root.resolve() != dataset.root.resolve():
        from dyntet.generate.retarget import RetargetError, expression_transfer

        own = dataset.tracking.expression[list(dataset.split("train"))].mean(0)
        wanted = target.tracking.expression[list(target.split("train"))].mean(0)
        try:
            expression = expression_transfer(dataset.face_model, target.face_model, own, wanted)(expression)
        except RetargetError as exc:
            raise AudioModelError(f"{dataset.root}: its expressions cannot be carried onto the avatar ({exc})") from None
    return TrainingClip(samples, times, np.asarray(expression, np.float64), dataset.root.name)


def fit_run_audio(run: Path, extra: list[Path] | tuple[Path, ...] = (), progress: ProgressFn | None = None) -> AudioModel:
    """Fit on the run's training split (plus every frame of ``extra`` datasets of the same person) and
    save ``RUN/audio_model.npz``. The test split is never heard, so it stays a fair benchmark."""
    run = Path(run)
    target = run_dataset(run)
    clips = [dataset_clip(target, target.split("train"))]
    for folder in extra:
        try:
            other = Dataset.open(Path(folder))
        except (DatasetError, OSError) as exc:
            raise AudioModelError(f"--with {folder}: cannot open the dataset ({exc})") from None
        clips.append(dataset_clip(other, other.split("all"), target))
    model = fit_audio_model(clips, target.face_model, progress=progress)
    model.save(run / AUDIO_MODEL_FILE)
    return model


def run_audio_model(run: Path, progress: ProgressFn | None = None) -> AudioModel:
    """``RUN/audio_model.npz``, fitted first when the run has none yet (a run trained before audio driving
    existed, or whose training stopped before its last stage) or only one an earlier dyntet wrote (refitted
    on the run's train split; ``dyntet audio-fit RUN --with ...`` adds other sessions again)."""
    path = Path(run) / AUDIO_MODEL_FILE
    if path.exists():
        try:
            return AudioModel.load(path)
        except OutdatedAudioModel:
            pass
    return fit_run_audio(run, progress=progress)
