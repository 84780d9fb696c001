"""The training entry point used by the CLI and the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dyntet.progress import ProgressFn, StopFn
from dyntet.train.config import TrainConfig, preset as preset_config
from dyntet.train.trainer import Trainer


def train(dataset: Path, run: Path, *, preset: str = "preview", overrides: dict[str, Any] | None = None,
          device: str = "auto", resume: bool = False, progress: ProgressFn | None = None,
          should_stop: StopFn | None = None) -> Path:
    """Train a DynTet avatar on ``dataset`` into the run folder ``run``.

    With ``resume=True`` and a checkpoint in ``run``, the run's own ``config.json`` is used (only
    ``iterations`` and ``minutes`` may be overridden, to extend a run) and training continues where it stopped.
    Raises :class:`dyntet.progress.Cancelled` after saving when ``should_stop()`` turns true.
    """
    run = Path(run)
    overrides = dict(overrides or {})
    config_file = run / "config.json"
    if resume and config_file.exists():
        saved = json.loads(config_file.read_text())
        config = TrainConfig.from_dict(saved["train"])
        extra = set(overrides) - {"iterations", "minutes", "device"}
        if extra:
            raise ValueError(f"a resumed run keeps its settings; only iterations and minutes may change, not {sorted(extra)}")
        config = config.with_overrides({"device": device, **overrides})
        dataset = Path(saved["dataset"]) if dataset is None else Path(dataset)
    else:
        config = preset_config(preset).with_overrides({"device": device, **overrides})
    trainer = Trainer(Path(dataset), run, config, resume=resume)
    return trainer.train(progress=progress, should_stop=should_stop)
