"""Plumbing shared by the preprocessing stages: throttled progress with cancellation, and the
``DATASET/.cache`` folder whose keys say which cached stages still match the video and options."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from dyntet.formats.atomic import write_bytes_atomic, write_json_atomic
from dyntet.formats.lock import LOCK_NAME
from dyntet.data.video import VideoInfo
from dyntet.face.options import PreprocessError
from dyntet.progress import Cancelled, Progress, ProgressFn, StopFn

CACHE_VERSION = 1
OUTPUT_FILES = ("tracking.npz", "face_model.npz", "background.png", "audio.wav", "report.json",
                "contact_sheet.png", "manifest.json")


class Reporter:
    """Throttled progress reports and cancellation checks for one run."""

    def __init__(self, progress: ProgressFn | None, should_stop: StopFn | None) -> None:
        self.progress = progress
        self.should_stop = should_stop
        self._last = 0.0
        self._stage = ""

    def __call__(self, stage: str, step: int, total: int, message: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if self.progress is not None and (force or stage != self._stage or step >= total or now - self._last > 0.2):
            self._last, self._stage = now, stage
            self.progress(Progress(stage=stage, step=step, total=total, message=message))

    def check(self, what: str) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(f"preprocessing stopped during {what}; run it again to resume")


class Cache:
    """``DATASET/.cache``: per-stage files plus the keys that say whether they are still valid."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.root = out / ".cache"

    def path(self, name: str) -> Path:
        return self.root / name

    def prepare(self, video_key: dict[str, Any], track_key: dict[str, Any], fit_key: dict[str, Any]) -> None:
        """Drop what no longer matches the video and options; keep the rest."""
        state_path = self.path("state.json")
        try:
            state = json.loads(state_path.read_text()) if state_path.exists() else {}
        except (OSError, ValueError):
            state = {}                      # unreadable: start over
        video_key, track_key, fit_key = json.loads(json.dumps([video_key, track_key, fit_key]))
        same_track = (state.get("version") == CACHE_VERSION and state.get("video") == video_key
                      and state.get("track") == track_key)
        same_fit = same_track and state.get("fit") == fit_key
        if not same_track and self.root.exists():
            shutil.rmtree(self.root)
        if not same_fit:
            for name in ("fit.npz",):
                self.path(name).unlink(missing_ok=True)
            clear_outputs(self.out)
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(state_path, {"version": CACHE_VERSION, "video": video_key, "track": track_key,
                                       "fit": fit_key})


def clear_outputs(out: Path) -> None:
    """Remove the files a previous run wrote into the dataset folder (and only those)."""
    for name in OUTPUT_FILES:
        (out / name).unlink(missing_ok=True)
    for sub in ("frames", "masks"):
        folder = out / sub
        if folder.is_dir():
            for png in folder.glob("*.png"):
                png.unlink()


def check_output_folder(out: Path, video: dict[str, Any], force: bool = False) -> None:
    """Refuse an output that is a file, a folder holding something other than a dataset or its cache, or
    (unless ``force``) a dataset of a different video: writing there would destroy it without a word."""
    if out.exists() and not out.is_dir():
        raise PreprocessError(f"output {out} is a file; give a folder for the dataset")
    if not out.is_dir():
        return
    contents = [p for p in out.iterdir() if p.name != LOCK_NAME]
    if contents and not ((out / ".cache").is_dir() or (out / "manifest.json").exists()):
        raise PreprocessError(f"output folder {out} already holds other files; give a new or empty folder "
                              f"(preprocessing would overwrite files in it)")
    other = _existing_source(out)
    if other is not None and not force and other != Path(video["path"]).resolve():
        raise PreprocessError(
            f"{out} already holds a dataset of another video ({other}); choose another output folder, or pass "
            f"--force to replace that dataset (it is then lost)")


def _existing_source(out: Path) -> Path | None:
    """The video a dataset folder (finished, or its cache) was made from, when it says."""
    for file, keys in ((out / ".cache" / "state.json", ("video", "path")), (out / "manifest.json", ("source", "video"))):
        try:
            value: Any = json.loads(file.read_text())
            for key in keys:
                value = value[key]
            return Path(value).resolve()
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Atomic ``np.savez`` (no pickles: plain arrays and strings only)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def video_key(info: VideoInfo) -> dict[str, Any]:
    """What identifies the input video for the cache: its path, size and modification time."""
    stat = info.path.stat()
    return {"path": str(info.path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
