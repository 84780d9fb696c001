"""MediaPipe face mesh and detection on the astronaut photo; subject selection logic."""

from __future__ import annotations

import numpy as np
import pytest
from face_clips import face_patch, place

from dyntet.face.tracking import (FaceDetector, FaceMeshTracker, SubjectTracker, TrackerConfig, TrackState,
                                  box_iou, box_size, landmark_box, locate_subject)


def test_face_mesh_finds_the_astronaut(astronaut):
    with FaceMeshTracker() as tracker:
        faces = tracker.process(astronaut)
    assert len(faces) == 1
    points = faces[0]
    assert points.shape == (478, 3) and points.dtype == np.float32
    x0, y0, x1, y1 = landmark_box(points)
    assert (x0, y0) == pytest.approx((179, 71), abs=8) and (x1, y1) == pytest.approx((271, 177), abs=8)
    assert points[468, 1] < points[13, 1] and points[473, 1] < points[13, 1]     # irises above the lips
    assert points[468, 0] < points[473, 0]                                      # subject's right eye on image left
    assert np.linalg.norm(points[468, :2] - points[473, :2]) == pytest.approx(43, abs=5)


def test_tiled_detection_finds_a_small_face_in_a_large_frame(astronaut):
    frame = place((2560, 1440), [(face_patch(astronaut, 130), (1700, 700))])
    with FaceDetector() as detector:
        found = detector.detect(frame)
    assert len(found) == 1
    x0, y0, x1, y1 = found[0].box
    assert 1700 < (x0 + x1) / 2 < 1700 + 360 and 700 < (y0 + y1) / 2 < 700 + 360
    assert 90 < box_size(found[0].box) < 170


def test_locate_subject_prefers_the_largest_face(astronaut):
    big, small = face_patch(astronaut, 170), face_patch(astronaut, 110)
    frame = place((1024, 576), [(big, (0, 0)), (small, (700, 120))])
    with FaceDetector() as detector:
        search = locate_subject([frame, frame], detector)
    assert search.faces_max == 2 and search.identities == 2
    assert search.face_px == pytest.approx(170, rel=0.25)
    cx = np.mean([(b[0] + b[2]) / 2 for b in search.subject_boxes])
    assert cx < 450                                   # the big face on the left
    x, y, w, h = search.roi
    assert x + w <= 1024 and y + h <= 576


def test_locate_subject_without_faces_tracks_the_whole_frame():
    with FaceDetector() as detector:
        search = locate_subject([np.full((240, 320, 3), 90, np.uint8)], detector)
    assert search.face_px is None and search.roi == (0, 0, 320, 240) and search.faces_max == 0


def square(cx, cy, size):
    pts = np.zeros((478, 3), np.float32)
    pts[:, 0] = cx + np.linspace(-size / 2, size / 2, 478)
    pts[:, 1] = cy + np.linspace(-size / 2, size / 2, 478)[::-1]
    return pts


def test_subject_tracker_follows_the_subject_and_ignores_newcomers():
    picker = SubjectTracker()
    assert picker.pick([]) is None
    first = picker.pick([square(100, 100, 50), square(300, 100, 80)])
    assert landmark_box(first)[0] == pytest.approx(260)          # largest face first
    moved = picker.pick([square(310, 105, 80), square(100, 100, 50)])
    assert landmark_box(moved)[0] == pytest.approx(270)          # nearest to the last subject box
    assert picker.pick([square(100, 100, 50), square(600, 400, 80)]) is None   # neither is the subject
    assert picker.faces_seen_max == 2


def test_subject_tracker_starts_at_the_expected_place():
    picker = SubjectTracker(expected=(80, 80, 120, 120))
    chosen = picker.pick([square(100, 100, 40), square(300, 100, 80)])
    assert landmark_box(chosen)[0] == pytest.approx(80)


def test_track_state_round_trip():
    state = TrackState.empty()
    state.append([square(10, 10, 5), None], [1, 0])
    again = TrackState.from_arrays(state.to_arrays())
    assert again.num_frames == 2 and again.found.tolist() == [True, False]
    assert np.isnan(again.landmarks[1]).all() and again.last_box() == pytest.approx(landmark_box(square(10, 10, 5)))


def test_box_helpers_and_config_validation():
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert box_iou((0, 0, 1, 1), (5, 5, 6, 6)) == 0.0
    with pytest.raises(ValueError, match="max_faces"):
        TrackerConfig(max_faces=0)
