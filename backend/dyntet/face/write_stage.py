"""Stages 5–8: frames and masks, background plate, audio, report — the dataset folder's files."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dyntet.formats.atomic import write_bytes_atomic, write_json_atomic
from dyntet.formats.dataset import DatasetWriter, encode_png, read_png
from dyntet_formats.wav import wav_bytes
from dyntet.data.video import AUDIO_SAMPLE_RATE, VideoError, VideoInfo, read_audio, read_frames
from dyntet.face.fit_stage import FitResult
from dyntet.face.masks import PersonSegmenter, background_plate, label_frame
from dyntet.face.options import PreprocessError, PreprocessOptions
from dyntet.face.report import SheetFrame, contact_sheet, warnings_for
from dyntet.face.runtime import Reporter
from dyntet.face.tracking import SubjectSearch, TrackState


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [h, w, 3] → [size, size, 3]: area filter when shrinking, bicubic when enlarging."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


def write_frames(info: VideoInfo, fps: float, fit: FitResult, writer: DatasetWriter,
                 options: PreprocessOptions, report: Reporter) -> None:
    """Stage 5: decode the crop of every kept frame, resize, label, write PNGs; resumes at the first
    frame whose PNGs are missing."""
    n = len(fit.frame_index)
    missing = [i for i in range(n) if not ((writer.root / "frames" / f"{i:06d}.png").exists()
                                          and (writer.root / "masks" / f"{i:06d}.png").exists())]
    if not missing:
        return
    first = missing[0]
    wanted = {int(src): i for i, src in enumerate(fit.frame_index) if i >= first}
    start = int(fit.frame_index[first])
    last = int(fit.frame_index[-1])
    # PNG encoding and the atomic writes dominate this stage: they run on worker threads (zlib and
    # fsync release the GIL) while the main thread decodes and segments the next frames.
    pending: deque[Future] = deque()
    with PersonSegmenter() as segmenter, ThreadPoolExecutor(max_workers=2) as pool:
        try:
            for k, frame in enumerate(read_frames(info, fps, crop=fit.crop.as_tuple(),
                                                  max_seconds=options.max_seconds, start=start)):
                source_index = start + k
                if source_index > last:
                    break
                i = wanted.get(source_index)
                if i is None:
                    continue
                rgb = _resize(frame, options.size)
                labels = label_frame(segmenter.probability(rgb), fit.tracked_crop[i], options.masks, frame=rgb)
                pending.append(pool.submit(writer.write_frame, i, rgb, labels))
                while len(pending) > 6:
                    pending.popleft().result()
                report("frames", i + 1, n, "writing frames and masks")
                report.check("writing frames")
        except VideoError as exc:
            raise PreprocessError(str(exc)) from exc
        finally:
            for future in pending:
                future.result()
    still = [i for i in range(first, n) if not (writer.root / "frames" / f"{i:06d}.png").exists()]
    if still:
        raise PreprocessError(f"the video ended early: {len(still)} tracked frames could not be decoded again "
                              f"(damaged file?)")


def write_background(writer: DatasetWriter, n: int, options: PreprocessOptions, report: Reporter) -> None:
    """Stage 6: the background plate from frames spread over the clip (read back from the folder)."""
    if (writer.root / "background.png").exists():
        return
    report("background", 0, 1, "background plate", force=True)
    count = min(n, options.masks.plate_frames)
    picks = np.unique(np.linspace(0, n - 1, count).round().astype(int))
    frames = np.stack([read_png(writer.root / "frames" / f"{i:06d}.png")[..., :3] for i in picks])
    labels = np.stack([read_png(writer.root / "masks" / f"{i:06d}.png") for i in picks])
    writer.write_background(background_plate(frames, labels, options.masks))
    report("background", 1, 1, "background plate", force=True)


def write_audio(info: VideoInfo, fps: float, fit: FitResult, writer: DatasetWriter, options: PreprocessOptions,
                report: Reporter, separate: Path | None = None) -> dict[str, Any] | None:
    """Stage 7: 16 kHz mono WAV spanning the kept frames (sample 0 = dataset frame 0); None without audio.

    ``separate`` is a sound file recorded alongside the video (sample 0 = the video's first frame), used
    instead of the video's own track."""
    path = writer.root / "audio.wav"
    path.unlink(missing_ok=True)
    if separate is None and not info.has_audio:
        return None
    report("audio", 0, 1, "audio", force=True)
    notes: list[str] = []
    if separate is not None:
        from dyntet.audio.decode import AudioError, load_speech

        try:
            speech = load_speech(separate)
        except AudioError as exc:
            raise PreprocessError(f"--audio: {exc}") from exc
        notes = speech.notes
        samples = (np.clip(speech.samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
        if options.max_seconds is not None:
            samples = samples[:int(options.max_seconds * AUDIO_SAMPLE_RATE)]
    else:
        try:
            samples = read_audio(info, max_seconds=options.max_seconds)
        except VideoError as exc:
            raise PreprocessError(str(exc)) from exc
    if samples is None or samples.size == 0:
        return None
    begin = int(round(fit.frame_index[0] / fps * AUDIO_SAMPLE_RATE))
    end = int(round((fit.frame_index[-1] + 1) / fps * AUDIO_SAMPLE_RATE))
    clip = samples[begin:end]
    if clip.size == 0:
        return None
    if clip.size < end - begin:  # audio shorter than the video: pad with silence so lengths agree
        clip = np.concatenate([clip, np.zeros(end - begin - clip.size, np.int16)])
    writer.write_audio(wav_bytes(clip, AUDIO_SAMPLE_RATE))
    report("audio", 1, 1, "audio", force=True)
    return {"sample_rate": AUDIO_SAMPLE_RATE, "seconds": clip.size / AUDIO_SAMPLE_RATE,
            "start_s": begin / AUDIO_SAMPLE_RATE, "codec": info.audio_codec if separate is None else None,
            "source": str(separate) if separate is not None else "video", "notes": notes}


def write_report(info: VideoInfo, fps: float, search: SubjectSearch, state: TrackState, fit: FitResult,
                 audio: dict[str, Any] | None, timings: dict[str, float], writer: DatasetWriter,
                 options: PreprocessOptions) -> dict[str, Any]:
    """Stage 8: ``report.json`` and ``contact_sheet.png``; returns the report."""
    m = fit.metrics
    total = state.num_frames
    kept = len(fit.frame_index)
    report: dict[str, Any] = {
        "video": {"path": str(info.path), "width": info.width, "height": info.height, "rotation": info.rotation,
                  "fps": info.fps, "duration_s": info.duration_s, "container": info.container,
                  "video_codec": info.video_codec, "audio_codec": info.audio_codec},
        "dataset": {"size": options.size, "fps": fps, "num_frames": kept},
        "frames": {"decoded": total, "kept": kept, "kept_frac": kept / total if total else 0.0,
                   "dropped_no_face": total - kept},
        "faces": {"max_per_frame": int(max(search.faces_max, int(state.faces.max()) if total else 0)),
                  "identities": search.identities, "subject_face_px": search.face_px,
                  "tracking_region": list(search.roi)},
        "reprojection_px": {"units": "crop pixels; per-frame median over the 478 landmarks, then summarised",
                            "raw": m["reproj_raw"], "smoothed": m["reproj_smoothed"],
                            "all_points_smoothed": m["reproj_smoothed_all_points"],
                            "crop_px_per_source_px": m["reproj_px_per_source_px"]},
        "jitter": {"units": "second difference of the head pose per frame",
                   "raw_deg": m["jitter_raw_deg"], "raw_mm": m["jitter_raw_mm"],
                   "smoothed_deg": m["jitter_deg"], "smoothed_mm": m["jitter_mm"]},
        "face_model": {"num_expression": m["num_expression"], "explained_variance": m["explained_variance"],
                       "variance_ratio_first": m["variance_ratio_head"]},
        "camera": {"intrinsics": [float(v) for v in fit.intrinsics], "fov_deg": m["fov_deg"],
                   "focal_px_source": m["focal_px_source"], "focal_at_prior": not m["focal_constrained"],
                   "distance_m": m["distance_m"]},
        "crop": {"x": fit.crop.x, "y": fit.crop.y, "side": fit.crop.side, "size": fit.crop.size,
                 "upsampled": fit.crop.side < fit.crop.size},
        "audio": audio,
        "timings_s": timings,
    }
    report["warnings"] = warnings_for(report)
    write_json_atomic(writer.root / "report.json", report)
    picks = np.unique(np.linspace(0, kept - 1, min(kept, options.contact_sheet_frames)).round().astype(int))
    tiles = [SheetFrame(read_png(writer.root / "frames" / f"{i:06d}.png")[..., :3],
                        read_png(writer.root / "masks" / f"{i:06d}.png"), fit.tracked_crop[i], fit.fitted_crop[i],
                        f"#{i} (source {int(fit.frame_index[i])})") for i in picks]
    write_bytes_atomic(writer.root / "contact_sheet.png", encode_png(contact_sheet(tiles)))
    return report
