"""The clip's square crop and the intrinsics it implies."""

from __future__ import annotations

import numpy as np
import pytest

from dyntet.face.crop import CropBox, CropConfig, clip_crop


def face_track(centre, size, frames=20, travel=0.0):
    t = np.linspace(0, 1, frames)
    offsets = np.stack([travel * np.sin(2 * np.pi * t), np.zeros(frames)], 1)
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * size
    return np.array(centre) + offsets[:, None, :] + corners[None]


def test_crop_is_square_inside_and_holds_the_face():
    box = clip_crop(face_track((600, 400), 150), (1280, 720), 512)
    assert box.side == round(2.1 * 150) and box.size == 512
    assert 0 <= box.x and box.x + box.side <= 1280 and 0 <= box.y and box.y + box.side <= 720
    assert box.x < 600 - 75 and box.x + box.side > 600 + 75
    # The face centre sits slightly above the crop's middle (hair above, shoulders below).
    assert (400 - box.y) / box.side == pytest.approx(0.47, abs=0.01)


def test_crop_grows_with_travel_and_stays_in_frame():
    still = clip_crop(face_track((600, 400), 150), (1280, 720), 512)
    moving = clip_crop(face_track((600, 400), 150, travel=80), (1280, 720), 512)
    assert moving.side > still.side + 100
    edge = clip_crop(face_track((60, 60), 150), (1280, 720), 512)
    assert edge.x == 0 and edge.y == 0


def test_crop_of_a_tight_frame_is_the_largest_square():
    box = clip_crop(face_track((128, 120), 150), (256, 256), 512)
    assert (box.x, box.y, box.side) == (0, 0, 256)
    box = clip_crop(face_track((300, 250), 200), (640, 480), 512)
    assert box.side == 420 and box.y + box.side <= 480


def test_crop_coordinates_and_intrinsics():
    box = CropBox(x=100, y=50, side=400, size=200)
    np.testing.assert_allclose(box.to_crop(np.array([[100.0, 50.0], [500.0, 450.0]])), [[0, 0], [200, 200]])
    fx, fy, cx, cy = box.intrinsics(1000.0, (320.0, 240.0))
    assert fx == fy == pytest.approx(500.0)
    assert (cx, cy) == pytest.approx((110.0, 95.0))
    assert box.as_tuple() == (100, 50, 400, 400)


def test_crop_config_validation():
    with pytest.raises(ValueError, match="head_scale"):
        CropConfig(head_scale=0.5)
    with pytest.raises(ValueError, match=r"\[N"):
        clip_crop(np.zeros((0, 4, 2)), (64, 64), 32)
