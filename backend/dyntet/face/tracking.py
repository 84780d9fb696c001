"""Face tracking with MediaPipe 0.10.21 (models ship inside the wheel; nothing is downloaded).

Two MediaPipe solutions, each where it is strong:

* **Full-range face detection** on a few frames sampled over the clip, tiled so faces down to about
  100 px are found even in 4K frames. It says where the subject is, how big the face is and whether
  other people appear (:func:`locate_subject`).
* **Face mesh** (video mode, ``refine_landmarks=True``: 468 surface points + 10 iris points = 478)
  on every frame of a region of interest around the subject. The face mesh's own detector only finds
  faces larger than about a fifth of its input, so the ROI crop is what makes wide shots, very large
  frames and small faces work (:class:`FaceMeshTracker`).

Landmarks are returned in *source display pixels*: ``x`` right, ``y`` down, origin at the image's
top-left corner, and MediaPipe's relative depth ``z`` (head centre ≈ 0, smaller = closer to the
camera) scaled like ``x``, i.e. in pixels too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

NUM_LANDMARKS = 478
"""Face-mesh points with ``refine_landmarks=True`` (468 surface + 2 × 5 iris)."""


@dataclass
class TrackerConfig:
    """Settings of the MediaPipe tracker."""

    max_faces: int = 2
    """Faces the face mesh may report per frame; >1 lets us pick the subject instead of whoever is first."""
    min_detection_confidence: float = 0.5
    """Face-mesh detector threshold (0–1)."""
    min_tracking_confidence: float = 0.5
    """Below this landmark confidence the face mesh re-detects (0–1)."""
    roi_max_side: int = 1280
    """The tracking region is scaled down to at most this many pixels per side (speed; landmarks are
    computed on a ≤ 256 px face crop internally anyway)."""
    detection_tile: int = 1024
    """Tile side (source pixels) for face detection on large frames."""
    detection_confidence: float = 0.5
    """Full-range detector threshold (0–1)."""

    def __post_init__(self) -> None:
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be ≥ 1, got {self.max_faces}")
        for name in ("min_detection_confidence", "min_tracking_confidence", "detection_confidence"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if self.roi_max_side < 128 or self.detection_tile < 256:
            raise ValueError("roi_max_side must be ≥ 128 and detection_tile ≥ 256")


Box = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)`` in pixels."""


def landmark_box(landmarks: np.ndarray) -> Box:
    """Bounding box of landmarks float [P, ≥2] (pixels)."""
    lo = np.nanmin(landmarks[:, :2], axis=0)
    hi = np.nanmax(landmarks[:, :2], axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def box_size(box: Box) -> float:
    """The larger side of a box (pixels): how we measure a face's size."""
    return max(box[2] - box[0], box[3] - box[1])


def box_iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _box_distance(a: Box, b: Box) -> float:
    """Centre distance in units of the boxes' mean size (0 = same place)."""
    ca = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
    cb = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    return float(np.linalg.norm(ca - cb) / max(1e-6, 0.5 * (box_size(a) + box_size(b))))


class FaceMeshTracker:
    """MediaPipe face mesh in video mode. Use one per clip (``with FaceMeshTracker(cfg) as t``)."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        from mediapipe.python.solutions import face_mesh

        self.config = config or TrackerConfig()
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=self.config.max_faces, refine_landmarks=True,
            min_detection_confidence=self.config.min_detection_confidence,
            min_tracking_confidence=self.config.min_tracking_confidence)

    def process(self, frame: np.ndarray) -> list[np.ndarray]:
        """Faces in one frame.

        Args:
            frame: uint8 [H, W, 3] RGB, the next frame of the clip.

        Returns:
            One float32 [478, 3] array per face: ``(x, y, z)`` in pixels of ``frame``.
        """
        height, width = frame.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(frame))
        faces = []
        for face in result.multi_face_landmarks or []:
            points = np.array([(p.x, p.y, p.z) for p in face.landmark], np.float32)
            if points.shape[0] != NUM_LANDMARKS:
                continue
            points *= np.array([width, height, width], np.float32)
            faces.append(points)
        return faces

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceMeshTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Detection:
    """One face found by the full-range detector (source pixels)."""

    box: Box
    score: float


class FaceDetector:
    """MediaPipe full-range face detection, run on overlapping tiles of large frames."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        from mediapipe.python.solutions import face_detection

        self.config = config or TrackerConfig()
        self._detector = face_detection.FaceDetection(model_selection=1,
                                                      min_detection_confidence=self.config.detection_confidence)

    def _tiles(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        tile = self.config.detection_tile
        tiles = [(0, 0, width, height)]
        if max(width, height) > tile:
            stride = tile * 3 // 4
            xs = sorted({*range(0, max(1, width - tile) + 1, stride), max(0, width - tile)})
            ys = sorted({*range(0, max(1, height - tile) + 1, stride), max(0, height - tile)})
            tiles += [(x, y, min(tile, width - x), min(tile, height - y)) for y in ys for x in xs]
        return tiles

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in uint8 [H, W, 3] RGB, merged across tiles (highest score wins overlaps)."""
        height, width = frame.shape[:2]
        found: list[Detection] = []
        for x, y, w, h in self._tiles(width, height):
            result = self._detector.process(np.ascontiguousarray(frame[y:y + h, x:x + w]))
            for det in result.detections or []:
                rel = det.location_data.relative_bounding_box
                box = (x + rel.xmin * w, y + rel.ymin * h, x + (rel.xmin + rel.width) * w,
                       y + (rel.ymin + rel.height) * h)
                found.append(Detection(box, float(det.score[0])))
        found.sort(key=lambda d: -d.score)
        kept: list[Detection] = []
        for det in found:
            if all(box_iou(det.box, k.box) < 0.3 and _box_distance(det.box, k.box) > 0.3 for k in kept):
                kept.append(det)
        return kept

    def close(self) -> None:
        self._detector.close()

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class SubjectSearch:
    """Where the subject is, from face detection on frames sampled over the clip."""

    roi: tuple[int, int, int, int]
    """``(x, y, w, h)`` source pixels to track in (the whole frame when the face is large)."""
    face_px: float | None
    """Median detected face size (pixels), None when nothing was detected."""
    faces_max: int
    """Most faces seen in one sampled frame."""
    identities: int
    """Distinct face positions seen in at least two samples (people, or a face on a poster)."""
    samples: int
    """Frames sampled."""
    subject_boxes: list[Box] = field(default_factory=list)


def locate_subject(frames: Iterable[np.ndarray], detector: FaceDetector, *,
                   roi_margin: float = 1.2) -> SubjectSearch:
    """Find the subject — the largest, most consistently present face — in sampled frames.

    Args:
        frames: uint8 [H, W, 3] frames sampled over the clip (all the same size).
        detector: a :class:`FaceDetector`.
        roi_margin: ROI margin around the union of the subject's boxes, in face sizes per side.
    """
    clusters: list[list[Box]] = []
    faces_max, samples, width, height = 0, 0, 0, 0
    for frame in frames:
        samples += 1
        height, width = frame.shape[:2]
        detections = detector.detect(frame)
        faces_max = max(faces_max, len(detections))
        for det in detections:
            for cluster in clusters:
                if _box_distance(det.box, cluster[-1]) < 0.6:
                    cluster.append(det.box)
                    break
            else:
                clusters.append([det.box])
    if not clusters:
        return SubjectSearch((0, 0, width, height), None, 0, 0, samples)

    def score(cluster: list[Box]) -> float:
        return len(cluster) * float(np.median([box_size(b) for b in cluster]))

    subject = max(clusters, key=score)
    identities = sum(1 for c in clusters if len(c) >= min(2, samples))
    face_px = float(np.median([box_size(b) for b in subject]))
    boxes = np.array(subject)
    x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
    x1, y1 = boxes[:, 2].max(), boxes[:, 3].max()
    side = max(x1 - x0, y1 - y0) + 2 * roi_margin * face_px
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx0, ry0 = max(0, int(np.floor(cx - side / 2))), max(0, int(np.floor(cy - side / 2)))
    rx1, ry1 = min(width, int(np.ceil(cx + side / 2))), min(height, int(np.ceil(cy + side / 2)))
    roi = (rx0, ry0, rx1 - rx0, ry1 - ry0)
    if roi[2] * roi[3] > 0.7 * width * height:
        roi = (0, 0, width, height)
    return SubjectSearch(roi, face_px, faces_max, max(identities, 1), samples, list(map(tuple, subject)))


class SubjectTracker:
    """Picks the subject among the faces of each frame: the one that continues the subject's track.

    The first pick is the face nearest the expected box (from detection) — or the largest face; then
    each frame takes the face closest to the subject's last box, if it is close enough to be the same
    person (a new face elsewhere never steals the track).
    """

    def __init__(self, expected: Box | None = None, max_jump: float = 0.8) -> None:
        self.last: Box | None = expected
        self.max_jump = max_jump
        self.faces_seen_max = 0

    def pick(self, faces: list[np.ndarray]) -> np.ndarray | None:
        """The subject's landmarks float [478, 3] among ``faces`` (any coordinates), or None."""
        self.faces_seen_max = max(self.faces_seen_max, len(faces))
        if not faces:
            return None
        boxes = [landmark_box(face) for face in faces]
        if self.last is None:
            index = int(np.argmax([box_size(b) for b in boxes]))
        else:
            distances = [_box_distance(b, self.last) for b in boxes]
            index = int(np.argmin(distances))
            # With company, only a face near the last one is the subject; alone, a face may have moved
            # further (frames without a face in between) but not across the picture.
            if distances[index] > (self.max_jump if len(faces) > 1 else 3 * self.max_jump):
                return None
        self.last = boxes[index]
        return faces[index]


@dataclass
class TrackState:
    """Per-frame tracking results of a clip; ``complete`` is False while a pass is under way."""

    landmarks: np.ndarray
    """float32 [T, 478, 3] source pixels (NaN where no face was tracked)."""
    found: np.ndarray
    """bool [T] the subject was tracked in frame t."""
    faces: np.ndarray
    """int8 [T] faces the face mesh reported in frame t."""
    complete: bool = False

    @classmethod
    def empty(cls) -> "TrackState":
        return cls(np.zeros((0, NUM_LANDMARKS, 3), np.float32), np.zeros(0, bool), np.zeros(0, np.int8))

    @property
    def num_frames(self) -> int:
        return int(self.found.shape[0])

    def append(self, landmarks: list[np.ndarray | None], faces: list[int]) -> None:
        block = np.full((len(landmarks), NUM_LANDMARKS, 3), np.nan, np.float32)
        for i, points in enumerate(landmarks):
            if points is not None:
                block[i] = points
        self.landmarks = np.concatenate([self.landmarks, block])
        self.found = np.concatenate([self.found, [p is not None for p in landmarks]])
        self.faces = np.concatenate([self.faces, np.asarray(faces, np.int8)])

    def last_box(self) -> Box | None:
        hits = np.flatnonzero(self.found)
        return landmark_box(self.landmarks[hits[-1]]) if hits.size else None

    def to_arrays(self) -> dict[str, np.ndarray]:
        return dict(landmarks=self.landmarks, found=self.found, faces=self.faces,
                    complete=np.array(self.complete))

    @classmethod
    def from_arrays(cls, arrays) -> "TrackState":
        return cls(np.asarray(arrays["landmarks"], np.float32), np.asarray(arrays["found"], bool),
                   np.asarray(arrays["faces"], np.int8), bool(arrays["complete"]))


def roi_to_source(faces: list[np.ndarray], roi: tuple[int, int, int, int], scale: float) -> list[np.ndarray]:
    """Map landmarks from a decoded ROI image (scaled by ``scale``) back to source pixels."""
    offset = np.array([roi[0], roi[1], 0.0], np.float32)
    return [face / np.float32(scale) + offset for face in faces]
