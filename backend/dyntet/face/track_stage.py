"""Stages 2–3: find the subject, then track every frame (cached in chunks, resumable)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dyntet.formats.atomic import write_json_atomic
from dyntet.data.video import VideoError, VideoInfo, read_frame_at, read_frames
from dyntet.face.options import PreprocessError, PreprocessOptions
from dyntet.face.runtime import Cache, Reporter, save_npz
from dyntet.face.tracking import FaceDetector, FaceMeshTracker, SubjectSearch, SubjectTracker, TrackState, \
    box_size, landmark_box, locate_subject
from dyntet.progress import Cancelled

_LOCATE_MAX_SIDE = 3840
"""Sampled frames are scaled down to at most this side for face detection (faces ≥ 100 px stay findable)."""


def locate(info: VideoInfo, fps: float, options: PreprocessOptions, cache: Cache,
           report: Reporter) -> SubjectSearch:
    """Stage 2 (cached in ``locate.json``): where the subject is and how big; a too small face is an error."""
    path = cache.path("locate.json")
    if path.exists():
        data = json.loads(path.read_text())
        return SubjectSearch(tuple(data["roi"]), data["face_px"], data["faces_max"], data["identities"],
                             data["samples"], [tuple(b) for b in data["subject_boxes"]])
    duration = info.duration_s or 0.0
    if options.max_seconds is not None:
        duration = min(duration, options.max_seconds) if duration else options.max_seconds
    n = options.locate_samples
    times = [0.0] if duration <= 0 else list(np.linspace(0.0, max(0.0, duration - 1.0 / fps), n))
    scale = min(1.0, _LOCATE_MAX_SIDE / max(info.width, info.height))

    def frames():
        for i, t in enumerate(times):
            report.check("face search")
            report("locate", i, len(times), "looking for the face")
            frame = read_frame_at(info, float(t), _LOCATE_MAX_SIDE)
            if frame is not None:
                yield frame

    with FaceDetector(options.tracker) as detector:
        search = locate_subject(frames(), detector)
    if scale < 1.0:  # back to source pixels
        k = 1.0 / scale
        boxes = [tuple(v * k for v in b) for b in search.subject_boxes]
        roi = tuple(int(round(v * k)) for v in search.roi)
        roi = (roi[0], roi[1], min(roi[2], info.width - roi[0]), min(roi[3], info.height - roi[1]))
        search = SubjectSearch(roi, None if search.face_px is None else search.face_px * k, search.faces_max,
                               search.identities, search.samples, boxes)
    if search.face_px is not None and search.face_px < 0.8 * options.min_face_px:
        raise PreprocessError(
            f"the face in {info.path.name} is only about {search.face_px:.0f} px tall; preprocessing needs at "
            f"least {options.min_face_px:.0f} px (forehead to chin). Film closer or at a higher resolution.")
    write_json_atomic(path, {"roi": list(search.roi), "face_px": search.face_px, "faces_max": search.faces_max,
                             "identities": search.identities, "samples": search.samples,
                             "subject_boxes": [list(b) for b in search.subject_boxes]})
    return search


# --- stage 3: track -------------------------------------------------------------------------------

_TRACK_CHUNK = 250


def _load_track_chunks(folder: Path) -> TrackState:
    state = TrackState.empty()
    for chunk in sorted(folder.glob("chunk_*.npz")):
        with np.load(chunk, allow_pickle=False) as data:
            part = TrackState.from_arrays(data)
        if int(chunk.stem.split("_")[1]) != state.num_frames:
            break  # a gap: ignore what follows, it will be tracked again
        state.landmarks = np.concatenate([state.landmarks, part.landmarks])
        state.found = np.concatenate([state.found, part.found])
        state.faces = np.concatenate([state.faces, part.faces])
    state.complete = (folder / "complete.json").exists()
    return state


def track(info: VideoInfo, fps: float, search: SubjectSearch, options: PreprocessOptions, cache: Cache,
          report: Reporter) -> TrackState:
    """Stage 3: face mesh on every frame of the subject's region, saved every 250 frames; resumes after
    the last saved chunk."""
    folder = cache.path("track")
    folder.mkdir(parents=True, exist_ok=True)
    state = _load_track_chunks(folder)
    if state.complete:
        return state
    x0, y0, w, h = search.roi
    factor = min(1.0, options.tracker.roi_max_side / max(w, h))
    out_w, out_h = max(1, round(w * factor)), max(1, round(h * factor))
    to_source_scale = np.array([w / out_w, h / out_h, w / out_w], np.float32)
    offset = np.array([x0, y0, 0.0], np.float32)
    expected = state.last_box()
    if expected is None and search.subject_boxes:
        expected = tuple(np.median(np.array(search.subject_boxes), 0).tolist())
    picker = SubjectTracker(expected)
    total = info.frame_count_estimate(fps, options.max_seconds)
    start = state.num_frames
    pending: list[np.ndarray | None] = []
    counts: list[int] = []

    def flush() -> None:
        nonlocal pending, counts
        if not pending:
            return
        part = TrackState.empty()
        part.append(pending, counts)
        save_npz(folder / f"chunk_{state.num_frames:08d}.npz", **part.to_arrays())
        state.append(pending, counts)
        pending, counts = [], []

    crop = None if (x0, y0, w, h) == (0, 0, info.width, info.height) else (x0, y0, w, h)
    try:
        with FaceMeshTracker(options.tracker) as tracker:
            for i, frame in enumerate(read_frames(info, fps, crop=crop, size=(out_w, out_h),
                                                  max_seconds=options.max_seconds, start=start)):
                faces = [face * to_source_scale + offset for face in tracker.process(frame)]
                pending.append(picker.pick(faces))
                counts.append(len(faces))
                done = start + i + 1
                report("track", done, max(total, done), "tracking the face")
                if len(pending) >= _TRACK_CHUNK:
                    flush()
                report.check("face tracking")
    except VideoError as exc:
        flush()
        raise PreprocessError(str(exc)) from exc
    except Cancelled:
        flush()
        raise
    flush()
    state.complete = True
    write_json_atomic(folder / "complete.json", {"frames": state.num_frames})
    report("track", state.num_frames, state.num_frames, "tracking done", force=True)
    return state


def check_tracking(state: TrackState, search: SubjectSearch, info: VideoInfo, options: PreprocessOptions) -> None:
    """Errors for clips that cannot make a dataset: nothing decoded, no face, a tiny face, too few frames."""
    name = info.path.name
    if state.num_frames == 0:
        raise PreprocessError(f"no frames could be decoded from {name} (zero length?)")
    kept = int(state.found.sum())
    if kept == 0:
        if search.face_px is None:
            raise PreprocessError(f"no face found in {name}: preprocessing needs a video of one person facing "
                                  f"the camera, face at least {options.min_face_px:.0f} px tall")
        raise PreprocessError(f"a face was detected in {name} but could not be tracked in any frame (too "
                              f"small, blurred, turned away or covered?)")
    sizes = [box_size(landmark_box(p)) for p in state.landmarks[state.found]]
    face_px = float(np.median(sizes))
    if face_px < options.min_face_px:
        raise PreprocessError(f"the face in {name} is only about {face_px:.0f} px tall; preprocessing needs at "
                              f"least {options.min_face_px:.0f} px (forehead to chin). Film closer or at a "
                              f"higher resolution.")
    if kept < options.min_frames:
        raise PreprocessError(f"the face was tracked in only {kept} of {state.num_frames} frames of {name}; "
                              f"at least {options.min_frames} are needed (use a longer clip with the face "
                              f"visible)")
