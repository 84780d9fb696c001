"""Control curves as CSV, in the Live Link Face layout: ``Timecode,BlendShapeCount,<name>,…`` per frame.

Live Link Face writes one row per captured frame with a SMPTE-like timecode ``HH:MM:SS:FF.mmm`` and
ARKit's 52 blendshape names; our export writes the same header with only our controls, so either file
drives an avatar. Columns we have no control for are ignored with a warning; controls missing from the
file stay 0. Rows are resampled to the avatar's frame rate by nearest timecode.

Numpy and the standard library only: the backend (``dyntet generate --drive``, ``dyntet rig
--curves-out``) and the Blender add-on (the panel's CSV import and export) share this one reader and writer.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dyntet_formats.errors import FormatError

TIME_COLUMNS = ("timecode", "blendshapecount")


class CurvesFormatError(FormatError):
    """A curve file that cannot be read; the message names the file and what was expected."""


@dataclass
class Curves:
    """Named curves on a regular timeline: values float32 [T, C] at ``fps``."""

    names: tuple[str, ...]
    values: np.ndarray
    fps: float

    def select(self, names: tuple[str, ...]) -> np.ndarray:
        """Values [T, len(names)] in that order; absent names are 0, unused columns are warned about.

        Names match case-insensitively: Live Link Face writes ``JawOpen`` for ARKit's ``jawOpen``.
        """
        mine = [n.lower() for n in self.names]
        wanted = {n.lower() for n in names}
        unknown = [n for n in self.names if n.lower() not in wanted]
        if unknown:
            warnings.warn(f"ignoring curves without a control: {', '.join(unknown)}", stacklevel=2)
        out = np.zeros((len(self.values), len(names)), np.float32)
        for j, name in enumerate(names):
            if name.lower() in mine:
                out[:, j] = self.values[:, mine.index(name.lower())]
        return out


def _seconds(timecode: str, fps: float) -> float:
    parts = timecode.strip().split(":")
    if len(parts) != 4:
        raise CurvesFormatError(f"timecode {timecode!r} is not HH:MM:SS:FF[.sub]")
    hours, minutes, seconds = (int(p) for p in parts[:3])
    return hours * 3600 + minutes * 60 + seconds + float(parts[3]) / fps


def read_curves(path: Path, fps: float, timecode_fps: float | None = None) -> Curves:
    """Read a Live Link Face–style CSV and resample it onto ``fps``.

    ``timecode_fps`` is the rate of the timecodes' frame field (Live Link Face records at 60); by default
    it is inferred as the largest frame field + 1 when the file spans a second, else taken as ``fps``.
    """
    path = Path(path)
    if not path.exists():
        raise CurvesFormatError(f"curve file {path} does not exist")
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    if len(rows) < 2:
        raise CurvesFormatError(f"{path} has no data rows: expected a header `Timecode,BlendShapeCount,jawOpen,…`")
    header = [h.strip() for h in rows[0]]
    lowered = [h.lower() for h in header]
    if "timecode" not in lowered:
        raise CurvesFormatError(f"{path} has no Timecode column: expected a Live Link Face CSV")
    time_col = lowered.index("timecode")
    value_cols = [j for j, h in enumerate(lowered) if h not in TIME_COLUMNS and h]
    data = [r for r in rows[1:] if r]
    if timecode_fps is None:
        try:
            fields = [float(r[time_col].split(":")[3]) for r in data]
            spans_second = len({r[time_col].split(":")[2] for r in data}) > 1
        except (IndexError, ValueError):
            raise CurvesFormatError(f"{path}: timecodes must be HH:MM:SS:FF[.sub]") from None
        timecode_fps = float(int(max(fields)) + 1) if spans_second else fps
    try:
        times = np.array([_seconds(r[time_col], timecode_fps) for r in data])
        values = np.array([[float(r[j]) for j in value_cols] for r in data], np.float32)
    except (ValueError, IndexError) as exc:
        raise CurvesFormatError(f"{path}: a row cannot be read ({exc})") from None
    times -= times[0]
    if np.any(np.diff(times) < 0):
        raise CurvesFormatError(f"{path}: timecodes go backwards; rows must be in time order")
    count = max(1, int(round((times[-1] + 1.0 / timecode_fps) * fps)))  # the take lasts one row past its last
    grid = np.arange(count) / fps
    after = np.clip(np.searchsorted(times, grid), 1, len(times) - 1) if len(times) > 1 else np.zeros(count, int)
    nearest = after - (np.abs(times[after - 1] - grid) <= np.abs(times[after] - grid)) if len(times) > 1 else after
    return Curves(tuple(header[j] for j in value_cols), values[nearest], float(fps))


def write_curves(path: Path, curves: Curves) -> None:
    """Write curves in the Live Link Face layout (atomic)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Timecode", "BlendShapeCount", *curves.names])
    fps_int = max(1, round(curves.fps))
    for t, row in enumerate(curves.values):
        seconds, frame = divmod(t, fps_int)
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        writer.writerow([f"{hours:02d}:{minutes:02d}:{secs:02d}:{frame:02d}.000", len(curves.names),
                         *(f"{v:.6f}" for v in row)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue().encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
