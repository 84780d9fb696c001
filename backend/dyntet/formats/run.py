"""Run folders (``docs/dataset-format.md`` "Run folder"): the only code that knows their layout.

``config.json`` (settings, dataset, resolved backends), ``checkpoints/last.pt``, ``metrics.jsonl`` (one JSON
object per logged iteration, appended), ``canonical.obj`` and ``preview.png``. Torch-free: the checkpoint's
contents are :mod:`dyntet.train.checkpoint`'s business, its path is this module's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dyntet.formats.atomic import write_bytes_atomic, write_json_atomic
from dyntet.formats.lock import FolderLock
from dyntet_formats.errors import FormatError
from dyntet_formats.files import read_json_object

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoints/last.pt"
CANONICAL_MESH = "canonical.obj"
PREVIEW = "preview.png"


class RunFolderError(FormatError):
    """A run folder is missing, incomplete or malformed."""


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG

    @property
    def checkpoint_path(self) -> Path:
        return self.root / CHECKPOINT

    @property
    def metrics_path(self) -> Path:
        return self.root / METRICS

    @property
    def canonical_mesh_path(self) -> Path:
        return self.root / CANONICAL_MESH

    @property
    def preview_path(self) -> Path:
        return self.root / PREVIEW

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def lock(self, activity: str = "training") -> FolderLock:
        return FolderLock(self.root, activity)

    def read_config(self) -> dict[str, Any]:
        """``config.json``, checked to hold the ``train`` settings."""
        hint = f"this run cannot be resumed as it is; start a new run, or `dyntet train --force` to replace {self.root}"
        config = read_json_object(self.config_path, hint, RunFolderError)
        if not isinstance(config.get("train"), dict):
            raise RunFolderError(f"{self.config_path} has no 'train' settings object: {hint}")
        return config

    def write_config(self, config: dict[str, Any]) -> None:
        write_json_atomic(self.config_path, config)

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every logged record. A torn last line (the process died mid-write) is dropped: it is the one
        record a resume logs again; a corrupt line elsewhere is an error naming its line."""
        if not self.metrics_path.exists():
            return []
        lines = self.metrics_path.read_bytes().split(b"\n")
        records: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError) as exc:
                if all(not rest.strip() for rest in lines[number:]):
                    break  # torn last line
                raise RunFolderError(f"{self.metrics_path} line {number} is not a JSON object ({exc}); "
                                     "delete that line to go on") from None
            records.append(record)
        return records

    def truncate_metrics(self, iteration: int) -> None:
        """Keep the records up to ``iteration`` (a resume logs the later ones again), torn lines dropped."""
        if not self.metrics_path.exists():
            return
        kept = [json.dumps(r) for r in self.read_metrics() if r.get("iteration", 0) <= iteration]
        write_bytes_atomic(self.metrics_path, ("\n".join(kept) + "\n" if kept else "").encode())

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def clear_metrics(self) -> None:
        self.metrics_path.unlink(missing_ok=True)
