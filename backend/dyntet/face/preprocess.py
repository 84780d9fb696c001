"""Real footage → dataset folder: the whole preprocessing pipeline (``dyntet preprocess``).

Stages, each cached under ``DATASET/.cache`` so an interrupted or cancelled run resumes:

1. **probe** the video (size, rotation, frame rate, audio).
2. **locate** the subject: face detection on frames sampled over the clip → region to track, face
   size (too small is an error), how many people appear.
3. **track** every frame with MediaPipe face mesh in that region (saved in chunks as it goes).
4. **fit**: focal length from face rigidity, pose-normalised shapes → landmark face model (mean +
   PCA expression basis, α per frame), robust per-frame head pose, zero-lag smoothing, the clip's crop.
5. **frames**: decode the crop of every kept frame at ``size``, segment person vs background, label
   head / torso / background; written as PNGs one by one (resumes at the first missing one).
6. **background** plate, 7. **audio** (16 kHz mono WAV), 8. **report** (``report.json``,
   ``contact_sheet.png``), then ``manifest.json`` — last, so an unfinished folder never looks complete.

The stages live in ``track_stage`` (2–3), ``fit_stage`` (4) and ``write_stage`` (5–8); ``options`` holds
:class:`PreprocessOptions` and :class:`PreprocessError`, ``runtime`` the progress/cancel plumbing and
the cache. Frames without the subject's face are dropped; ``tracking.frame_index`` keeps each kept frame's
index in the decoded stream (at the dataset's fps: frame ``i`` of the source shows time ``i / fps``).
"""

from __future__ import annotations

import time
from pathlib import Path

from dyntet.formats.dataset import DatasetWriter, Tracking
from dyntet.formats.lock import FolderLock
from dyntet.data.video import VideoError, probe
from dyntet.face.fit_stage import fit_clip
from dyntet.face.options import PreprocessError, PreprocessOptions
from dyntet.face.runtime import Cache, Reporter, check_output_folder, video_key
from dyntet.face.track_stage import check_tracking, locate, track
from dyntet.face.write_stage import write_audio, write_background, write_frames, write_report
from dyntet.progress import ProgressFn, StopFn

__all__ = ["PreprocessError", "PreprocessOptions", "preprocess"]


def preprocess(video: Path, out: Path, options: PreprocessOptions | None = None,
               progress: ProgressFn | None = None, should_stop: StopFn | None = None, force: bool = False,
               audio: Path | None = None) -> Path:
    """Turn a video of one talking person into a dataset folder (``docs/dataset-format.md``).

    Args:
        video: the footage (any container and codec ffmpeg reads; rotation metadata honoured).
        out: the dataset folder to write (created; a previous run's cache in it is resumed). A dataset of
            another video there is refused unless ``force``; the folder is locked while written.
        options: :class:`PreprocessOptions`.
        progress: called with :class:`~dyntet.progress.Progress` reports per stage.
        should_stop: polled often; when it returns True the run saves its state and raises
            :class:`~dyntet.progress.Cancelled` — running again resumes.
        audio: a sound file recorded with the video (starting with its first frame), used instead of the
            video's own track (many clips come silent with the WAV beside them).

    Returns:
        ``out``, complete (``manifest.json`` written last).

    Raises:
        PreprocessError: the input cannot make a dataset (missing or unreadable file, no video stream,
            no or too small a face, too few usable frames, an output folder with foreign files).
        Cancelled: ``should_stop`` asked to stop.
    """
    options = options or PreprocessOptions()
    video, out = Path(video), Path(out)
    if audio is not None and not Path(audio).is_file():
        raise PreprocessError(f"--audio {audio}: no such file")
    report = Reporter(progress, should_stop)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(timings.get(stage, 0.0) + now - clock, 3)
        clock = now

    report("probe", 0, 1, f"reading {video.name}", force=True)
    try:
        info = probe(video)
    except VideoError as exc:
        raise PreprocessError(str(exc)) from exc
    fps = float(info.fps) if options.fps == "keep" else float(options.fps)
    check_output_folder(out, video_key(info), force)
    out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out, "preprocessing"):
        cache = Cache(out)
        cache.prepare(video_key(info), options.track_key(), options.fit_key())
        lap("probe")
        report.check("probing")

        search = locate(info, fps, options, cache, report)
        lap("locate")
        state = track(info, fps, search, options, cache, report)
        lap("track")
        check_tracking(state, search, info, options)
        fit = fit_clip(state, info, fps, options, cache, report)
        lap("fit")

        writer = DatasetWriter(out, options.size, fps)
        write_frames(info, fps, fit, writer, options, report)
        lap("frames")
        n = len(fit.frame_index)
        write_background(writer, n, options, report)
        lap("background")
        audio_info = write_audio(info, fps, fit, writer, options, report, None if audio is None else Path(audio))
        lap("audio")
        report.check("finishing")
        tracking = Tracking(intrinsics=fit.intrinsics, pose=fit.pose, expression=fit.expression,
                            frame_index=fit.frame_index, landmarks=fit.tracked_crop)
        summary_report = write_report(info, fps, search, state, fit, audio_info, timings, writer, options)
        lap("report")
        from dyntet import __version__

        source = {"kind": "video", "video": str(info.path), "tool": f"dyntet {__version__} preprocess",
                  "frames_decoded": state.num_frames, "crop": [fit.crop.x, fit.crop.y, fit.crop.side],
                  "rotation": info.rotation, "warnings": summary_report["warnings"]}
        writer.finish(tracking, fit.face_model, source)
        report("done", 1, 1, f"dataset written to {out}", force=True)
    return out
