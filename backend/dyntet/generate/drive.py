"""What drives the avatar: expressions, head motion, timing and audio of a driving clip.

Three sources (``--drive``):

* ``train`` / ``test`` / ``all`` — a split of the run's own dataset (the avatar replays its footage;
  α as tracked).
* a dataset folder — another preprocessed clip, usually another person: α carried into the avatar's
  face-model basis by :mod:`dyntet.generate.retarget` (a dataset that *is* the avatar's own is used as
  ``all``).
* a ``.csv`` of named control curves (Live Link Face layout, :mod:`dyntet.rig.curves`) — α through the
  run's control map (``dyntet rig``), head motion from the avatar's own clip.
* an audio file (``.wav``, ``.flac``, ``.mp3``, ``.m4a`` …), or a video's sound track with
  ``audio_only`` — α from the speech through the run's audio model (:mod:`dyntet.audio`), head motion
  from the avatar's own clip.
* a video file — preprocessed on the fly with ``dyntet.face.preprocess`` into a driver dataset folder
  (kept, so a second run reuses it), then as above.

Expressions are kept for the *whole* driver clip, so the expression windows of the chosen frames
(``--frames a:b``, counted within the split or clip) see their true neighbours, as in training.
Head motion comes from the driver or from the avatar's own clip (``--pose``), low-pass filtered, and is
expressed relative to the scene of :mod:`dyntet.generate.pose`.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dyntet.audio.decode import AUDIO_SUFFIXES
from dyntet.formats.dataset import Dataset, DatasetError
from dyntet.generate import pose as pose_ops
from dyntet.generate.retarget import RetargetError, expression_transfer
from dyntet.progress import ProgressFn, StopFn

SPLITS = ("train", "test", "all")
PoseSource = Literal["driver", "target"]


class DriveError(ValueError):
    """The driving source or its options are unusable; the message says what to do."""


@dataclass(frozen=True)
class DriveSource:
    """A parsed ``--drive`` value: a split of the run's dataset, a dataset folder or a video file."""

    kind: Literal["split", "dataset", "video", "curves", "audio"]
    split: str | None = None
    path: Path | None = None

    @classmethod
    def parse(cls, text: str | Path, audio_only: bool = False) -> DriveSource:
        """``train``/``test``/``all``, an existing dataset folder, or an existing video, audio or curves file.

        A :class:`~pathlib.Path` is always a path; a string naming a split is the split, so a folder or
        file literally called ``test`` is reached as ``./test``. ``audio_only`` drives from a video's
        sound track instead of its face.
        """
        raw = str(text).strip()
        if not raw:
            raise DriveError("--drive is empty: use train, test, all, a dataset folder or a video file")
        if isinstance(text, str) and raw in SPLITS:
            return cls("split", split=raw)
        path = Path(raw).expanduser()
        if path.is_dir():
            if not (path / "manifest.json").is_file():
                raise DriveError(f"--drive {raw}: the folder is not a dataset (no manifest.json); preprocess the "
                                 "clip with `dyntet preprocess VIDEO -o DATASET`, or pass the video itself")
            return cls("dataset", path=path)
        if path.is_file():
            suffix = path.suffix.lower()
            if suffix == ".csv":
                return cls("curves", path=path)
            return cls("audio" if audio_only or suffix in AUDIO_SUFFIXES else "video", path=path)
        if audio_only and (isinstance(text, Path) or raw not in SPLITS):
            raise DriveError(f"--drive {raw!r}: no such audio or video file")
        raise DriveError(f"--drive {raw!r} is neither a split (train, test, all) nor an existing dataset folder "
                         "or video file")

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "split": self.split, "path": str(self.path.resolve()) if self.path else None}


@dataclass(frozen=True)
class FrameRange:
    """``--frames a:b``: a half-open range of frames counted within the driving split or clip."""

    start: int = 0
    stop: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> FrameRange:
        """``"a:b"``, ``"a:"``, ``":b"`` or None/``""``/``":"`` (everything); a, b non-negative integers."""
        if text is None or str(text).strip() in ("", ":"):
            return cls()
        parts = str(text).split(":")
        if len(parts) != 2:
            raise DriveError(f"--frames {text!r}: expected START:STOP, e.g. 0:250 (either side may be empty)")
        try:
            start = int(parts[0]) if parts[0].strip() else 0
            stop = int(parts[1]) if parts[1].strip() else None
        except ValueError:
            raise DriveError(f"--frames {text!r}: START and STOP must be whole numbers, e.g. 0:250") from None
        return cls.of(start, stop)

    @classmethod
    def of(cls, start: int | None, stop: int | None) -> FrameRange:
        start = 0 if start is None else int(start)
        if start < 0 or (stop is not None and stop < 0):
            raise DriveError(f"--frames {start}:{stop}: frame numbers cannot be negative")
        if stop is not None and stop <= start:
            raise DriveError(f"--frames {start}:{stop}: STOP must be greater than START")
        return cls(start, None if stop is None else int(stop))

    def select(self, count: int, what: str) -> range:
        """The chosen positions among ``count`` frames of ``what``; an error when the range is outside."""
        stop = count if self.stop is None else self.stop
        if self.start >= count or stop > count:
            raise DriveError(f"--frames {self.start}:{'' if self.stop is None else self.stop} is outside {what}, "
                             f"which has {count} frames (valid: 0 <= START < STOP <= {count})")
        return range(self.start, stop)


@dataclass
class DriveOptions:
    """How a driving clip becomes per-frame expressions and poses."""

    frames: FrameRange = field(default_factory=FrameRange)
    pose: PoseSource = "driver"
    """Head motion from the driving clip, or from the avatar's own clip (looped back and forth)."""
    pose_cutoff_hz: float = 4.0
    """Low-pass cutoff of the head motion (≤ 0: as tracked)."""
    driver_dataset: Path | None = None
    """Where a driving *video* is preprocessed to (default: ``<output>.driver`` beside the output)."""
    preprocess_size: int = 256
    """Frame size of a driver dataset made from a video (only its tracking is used)."""
    run: Path | None = None
    """The run folder, whose ``controls.npz`` turns a curves CSV into α and whose ``audio_model.npz`` turns
    speech into α (set by ``generate``)."""
    audio_only: bool = False
    """Drive a video source from its sound track (the speech), not from its face."""

    def __post_init__(self) -> None:
        if self.pose not in ("driver", "target"):
            raise DriveError(f"--pose must be 'driver' or 'target', got {self.pose!r}")
        if not np.isfinite(self.pose_cutoff_hz):
            raise DriveError(f"pose cutoff must be a finite number of Hz, got {self.pose_cutoff_hz!r}")


@dataclass
class DrivingClip:
    """Everything generation needs from the driver, in the avatar's terms.

    Attributes:
        expression: float32 [N, K] α in the avatar's face-model basis for the whole driver clip.
        frames: int64 [T] the frames to generate (indices into ``expression``).
        head_to_scene: float32 [T, 4, 4] rigid head motion (scene: :mod:`dyntet.generate.pose`).
        scene_to_camera: float64 [4, 4] head-to-camera of the head at the scene origin, for the avatar's
            own camera (``intrinsics``, ``size``) — render with ``scene_to_camera · head_to_scene[t]``.
        intrinsics: float32 [4] fx, fy, cx, cy of the avatar's camera in pixels of a ``size``² image.
        size: side of the avatar's dataset frames.
        fps: frames per second of the driver.
        audio: WAV bytes of the driver's audio over the chosen frames, or None.
        source: provenance (JSON-friendly).
    """

    expression: np.ndarray
    frames: np.ndarray
    head_to_scene: np.ndarray
    scene_to_camera: np.ndarray
    intrinsics: np.ndarray
    size: int
    fps: float
    audio: bytes | None
    source: dict[str, Any]

    @property
    def num_frames(self) -> int:
        return int(len(self.frames))


def driving_clip(target: Dataset, target_mean: np.ndarray, source: DriveSource, options: DriveOptions,
                 output: Path | None = None, progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None) -> DrivingClip:
    """Resolve a driving source against the avatar's dataset.

    Args:
        target: the avatar's (the run's) dataset.
        target_mean: float [K] ᾱ of the avatar (``DynTet.mean_expression``).
        source: from :meth:`DriveSource.parse`.
        options: :class:`DriveOptions`.
        output: the file or folder being generated (names the default driver-dataset folder for videos).
        progress, should_stop: passed to preprocessing of a driving video.

    Raises:
        DriveError: unusable source, frame range or face models.
    """
    if source.kind == "curves":
        return _curves_clip(target, source, options)
    if source.kind == "audio":
        return _speech_clip(target, source, options)
    driver, split, retarget = _open_driver(target, source, options, output, progress, should_stop)
    positions = options.frames.select(len(split), f"the driving clip ({_what(source)})")
    frames = np.asarray(split, np.int64)[positions.start:positions.stop]
    if retarget:
        try:
            transfer = expression_transfer(driver.face_model, target.face_model,
                                           driver.tracking.expression.mean(0), target_mean)
        except RetargetError as exc:
            raise DriveError(f"cannot carry {source.path}'s expressions onto this avatar: {exc}") from None
        expression = transfer(driver.tracking.expression)
        retarget_info: dict[str, Any] | None = transfer.summary()
    else:
        expression = driver.tracking.expression.astype(np.float32)
        retarget_info = None

    own_motion = not retarget or options.pose == "target"
    if options.pose == "driver" or not retarget:
        track = pose_ops.smooth(driver.tracking.pose, driver.fps, options.pose_cutoff_hz,
                                driver.tracking.frame_index)[frames]
    else:  # the avatar's own clip, from its start, back and forth, at the driver's frame times
        clip = pose_ops.smooth(target.tracking.pose, target.fps, options.pose_cutoff_hz,
                               target.tracking.frame_index)
        steps = np.round(np.arange(len(frames)) * target.fps / driver.fps).astype(np.int64)
        track = clip[pose_ops.ping_pong(int(steps.max()) + 1, len(clip))[steps]]
    reference = pose_ops.mean_pose(track)
    scene_to_camera = reference if own_motion else pose_ops.mean_pose(target.tracking.pose)
    described = {
        "drive": source.describe(), "frames": [int(positions.start), int(positions.stop)],
        "driver_frames": [int(frames[0]), int(frames[-1]) + 1], "driver_dataset": str(driver.root.resolve()),
        "pose": options.pose, "pose_cutoff_hz": float(options.pose_cutoff_hz), "retarget": retarget_info,
        "scene": "head space of the mean head pose of the frames' pose track",
    }
    return DrivingClip(expression=np.ascontiguousarray(expression, np.float32), frames=frames,
                       head_to_scene=pose_ops.head_to_scene(track, reference), scene_to_camera=scene_to_camera,
                       intrinsics=target.tracking.intrinsics.astype(np.float32), size=target.size,
                       fps=driver.fps, audio=_audio(driver, frames), source=described)


def _curves_clip(target: Dataset, source: DriveSource, options: DriveOptions) -> DrivingClip:
    from dyntet.rig.controls import ControlsError
    from dyntet.rig.curves import CurvesFormatError
    from dyntet.rig.drive_curves import curves_expression, load_curves, own_motion

    if options.run is None or source.path is None:
        raise DriveError("driving from curves needs the run folder (its controls.npz)")
    try:
        curves = load_curves(source.path, target)
        expression = curves_expression(options.run, curves)
    except (ControlsError, CurvesFormatError) as exc:
        raise DriveError(f"--drive {source.path}: {exc}") from None
    positions = options.frames.select(len(expression), f"the curves ({source.path})")
    frames = np.arange(positions.start, positions.stop, dtype=np.int64)
    track = own_motion(target, len(frames), curves.fps, options.pose_cutoff_hz)
    reference = pose_ops.mean_pose(track)
    described = {"drive": source.describe(), "frames": [int(positions.start), int(positions.stop)],
                 "curves": list(curves.names), "pose": "target", "pose_cutoff_hz": float(options.pose_cutoff_hz),
                 "scene": "head space of the mean head pose of the frames' pose track"}
    return DrivingClip(expression=expression, frames=frames, head_to_scene=pose_ops.head_to_scene(track, reference),
                       scene_to_camera=reference, intrinsics=target.tracking.intrinsics.astype(np.float32),
                       size=target.size, fps=curves.fps, audio=None, source=described)


def _speech_clip(target: Dataset, source: DriveSource, options: DriveOptions) -> DrivingClip:
    """α from speech through the run's audio model; the avatar's own head motion; the speech as audio."""
    from dyntet.audio.decode import SAMPLE_RATE, AudioError, load_speech
    from dyntet.audio.features import frame_times
    from dyntet.audio.model import AudioModelError
    from dyntet.audio.run_model import run_audio_model
    from dyntet.rig.drive_curves import own_motion
    from dyntet_formats.wav import wav_bytes

    if options.run is None or source.path is None:
        raise DriveError("driving from audio needs the run folder (its audio model)")
    try:
        speech = load_speech(source.path)
        model = run_audio_model(options.run)
    except (AudioError, AudioModelError) as exc:
        raise DriveError(f"--drive {source.path}: {exc}") from None
    count = int(speech.seconds * target.fps)
    if count < 1:
        raise DriveError(f"--drive {source.path}: {speech.seconds:.2f} s of audio is shorter than one frame")
    expression = model.expression(speech.samples, frame_times(count, target.fps))
    positions = options.frames.select(count, f"the speech ({source.path}, {count} frames at {target.fps:g} fps)")
    frames = np.arange(positions.start, positions.stop, dtype=np.int64)
    track = own_motion(target, len(frames), target.fps, options.pose_cutoff_hz)
    reference = pose_ops.mean_pose(track)
    begin, end = (int(round(f / target.fps * SAMPLE_RATE)) for f in (positions.start, positions.stop))
    described = {"drive": source.describe(), "frames": [int(positions.start), int(positions.stop)],
                 "audio_notes": list(speech.notes), "audio_model": dict(model.summary), "pose": "target",
                 "pose_cutoff_hz": float(options.pose_cutoff_hz),
                 "scene": "head space of the mean head pose of the frames' pose track"}
    return DrivingClip(expression=expression, frames=frames, head_to_scene=pose_ops.head_to_scene(track, reference),
                       scene_to_camera=reference, intrinsics=target.tracking.intrinsics.astype(np.float32),
                       size=target.size, fps=target.fps, audio=wav_bytes(speech.samples[begin:end]),
                       source=described)


def _open_driver(target: Dataset, source: DriveSource, options: DriveOptions, output: Path | None,
                 progress: ProgressFn | None, should_stop: StopFn | None) -> tuple[Dataset, range, bool]:
    """(driver dataset, the frames of it to choose from, whether its expressions need retargeting)."""
    if source.kind == "split":
        try:
            return target, target.split(source.split or ""), False
        except DatasetError as exc:
            raise DriveError(str(exc)) from None
    if source.kind == "video":
        folder = _preprocess_video(source.path, options, output, progress, should_stop)
    else:
        folder = source.path
    try:
        driver = Dataset.open(folder)
    except (DatasetError, OSError, KeyError, ValueError) as exc:
        raise DriveError(f"--drive {folder}: cannot read the dataset ({exc})") from None
    same = driver.root.resolve() == target.root.resolve()
    return driver, driver.split("all"), not same


def _preprocess_video(video: Path | None, options: DriveOptions, output: Path | None,
                      progress: ProgressFn | None, should_stop: StopFn | None) -> Path:
    try:
        from dyntet.face.preprocess import PreprocessError, PreprocessOptions, preprocess
    except ImportError as exc:
        raise DriveError(f"driving from a video needs the preprocessing module (dyntet.face.preprocess), which "
                         f"cannot be imported here ({exc}); preprocess the video elsewhere and pass the dataset "
                         "folder") from None
    if video is None:
        raise DriveError("a video drive source needs a path")
    folder = options.driver_dataset
    if folder is None:
        if output is None:
            raise DriveError("driving from a video needs a folder for its dataset: set driver_dataset")
        folder = output.with_name(output.name + ".driver")
    if (folder / "manifest.json").is_file():
        return folder  # preprocessed before (a finished dataset folder is never half-written)
    try:
        preprocess(video, folder, PreprocessOptions(size=options.preprocess_size), progress=progress,
                   should_stop=should_stop)
    except PreprocessError as exc:
        raise DriveError(f"could not preprocess the driving video {video}: {exc}") from None
    return folder


def _what(source: DriveSource) -> str:
    return f"split {source.split!r}" if source.kind == "split" else str(source.path)


def _audio(driver: Dataset, frames: np.ndarray) -> bytes | None:
    """The driver's audio under the chosen frames as WAV bytes (same sample format), or None.

    ``audio.wav`` starts at the dataset's frame 0; frame ``n`` shows time ``(frame_index[n] −
    frame_index[0]) / fps`` of it. The cut starts at the first chosen frame and lasts ``T / fps``.
    """
    path = driver.audio_path
    if path is None:
        return None
    index = driver.tracking.frame_index
    start_s = float(index[frames[0]] - index[0]) / driver.fps
    try:
        with wave.open(str(path), "rb") as src:
            rate, width, channels = src.getframerate(), src.getsampwidth(), src.getnchannels()
            total = src.getnframes()
            start = min(int(round(start_s * rate)), total)
            count = min(int(round(len(frames) / driver.fps * rate)), total - start)
            src.setpos(start)
            data = src.readframes(count)
    except (wave.Error, EOFError, OSError) as exc:
        raise DriveError(f"{path}: the driver's audio is not a readable PCM WAV file ({exc})") from None
    if count <= 0:
        return None
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(data)
    return buffer.getvalue()
