"""Head / torso / background labels and the background plate."""

from __future__ import annotations

import numpy as np
import pytest

from dyntet.formats.dataset import MASK_BACKGROUND, MASK_HEAD, MASK_TORSO
from dyntet.face.masks import MaskConfig, background_plate, label_frame
from dyntet.face.topology import CHIN, FOREHEAD, LEFT_CHEEK, RIGHT_CHEEK


def upright_face(size=200):
    """Landmarks of an upright face in a size² image: forehead y=40, chin y=120, cheeks x=70/130."""
    pts = np.full((478, 2), (100.0, 80.0))
    pts[FOREHEAD], pts[CHIN] = (100, 40), (100, 120)
    pts[RIGHT_CHEEK], pts[LEFT_CHEEK] = (70, 85), (130, 85)
    return pts


def person_silhouette(size=200):
    """A head-and-shoulders person mask: head disc, neck, wide shoulders from y=135 down."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    head = (xs - 100) ** 2 / 45 ** 2 + (ys - 80) ** 2 / 55 ** 2 < 1
    neck = (np.abs(xs - 100) < 18) & (ys > 110) & (ys < 150)
    shoulders = (ys > 128) & (np.abs(xs - 100) < 90)
    return (head | neck | shoulders).astype(np.float32)


def test_labels_split_head_torso_and_background():
    labels = label_frame(person_silhouette(), upright_face())
    assert labels.dtype == np.uint8 and labels.shape == (200, 200)
    assert labels[80, 100] == MASK_HEAD                 # face
    assert labels[30, 100] == MASK_HEAD                 # hair above the forehead landmark
    assert labels[135, 100] == MASK_HEAD                # neck just under the chin (0.3 face heights)
    assert labels[135, 160] == MASK_TORSO               # shoulder at the same height, outside the neck band
    assert labels[180, 100] == MASK_TORSO               # chest
    assert labels[10, 10] == MASK_BACKGROUND


def dressed_frame(size=200, seed=0):
    """RGB frame for ``person_silhouette``: noisy skin on face and neck, a white collar across the neck
    (y 136–144), a dark blue jacket, a skin-coloured speck inside the collar, a grey wall."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    frame = np.empty((size, size, 3), np.float64)
    frame[:] = (120, 120, 125)                                          # wall
    person = person_silhouette(size) > 0.5
    frame[person] = (30, 35, 70)                                        # jacket
    skin = person & ((ys < 136) & ((ys < 128) | (np.abs(xs - 100) < 18)))
    shade = np.clip(1.0 - np.maximum(ys - 110, 0) / 60, 0.6, 1.0)[..., None]   # the neck is in shadow
    frame[skin] = ((200, 150, 120) * shade)[skin]
    frame[(ys >= 136) & (ys < 145) & (np.abs(xs - 100) < 24)] = (235, 235, 240)  # collar
    frame[(ys >= 139) & (ys < 142) & (np.abs(xs - 118) < 2)] = (200, 150, 120)    # speck on the collar
    frame += rng.normal(0, 4, frame.shape)
    return frame.clip(0, 255).astype(np.uint8)


def test_neck_band_keeps_skin_and_gives_collar_and_jacket_to_the_torso():
    person, face, frame = person_silhouette(), upright_face(), dressed_frame()
    plain = label_frame(person, face)
    dressed = label_frame(person, face, frame=frame)
    for labels in (plain, dressed):
        assert labels[80, 100] == MASK_HEAD and labels[30, 100] == MASK_HEAD
        assert labels[130, 100] == MASK_HEAD            # shaded neck skin under the chin
        assert labels[180, 100] == MASK_TORSO
    # Collar, jacket inside the band and the detached skin-coloured speck: head by geometry alone,
    # torso once the colours are known.
    for y, x in ((140, 100), (132, 122), (140, 118)):
        assert plain[y, x] == MASK_HEAD and dressed[y, x] == MASK_TORSO, (y, x)
    # Without colours (or with the refinement off) labels are exactly the geometric ones.
    assert np.array_equal(label_frame(person, face, MaskConfig(neck_skin_only=False), frame=frame), plain)
    with pytest.raises(ValueError, match="skin_distance"):
        MaskConfig(skin_distance=0.0)


def test_jaw_zone_gives_a_raised_jacket_shoulder_to_the_torso_and_keeps_skin_beside_the_jaw():
    ys, xs = np.mgrid[0:200, 0:200] + 0.5
    shoulder = (ys > 100) & (ys < 130) & (xs > 150) & (xs < 190)    # rises 20 px above the chin (y 120)
    person = np.maximum(person_silhouette(), shoulder.astype(np.float32))
    frame = dressed_frame()
    frame[shoulder] = (30, 35, 70)                                  # jacket
    plain = label_frame(person, upright_face())
    dressed = label_frame(person, upright_face(), frame=frame)
    assert plain[110, 170] == MASK_HEAD and dressed[110, 170] == MASK_TORSO
    assert dressed[105, 135] == MASK_HEAD        # skin beside the jaw, outside the face hull: head
    assert dressed[85, 170] == MASK_BACKGROUND and dressed[60, 140] == MASK_HEAD   # above the zone: unchanged
    # With no jaw zone the shoulder above the chin line is head again, as by geometry alone.
    assert label_frame(person, upright_face(), MaskConfig(jaw_zone_height=0.0), frame=frame)[110, 170] == MASK_HEAD
    with pytest.raises(ValueError, match="jaw_zone_height"):
        MaskConfig(jaw_zone_height=1.5)


def test_face_hull_is_head_even_when_segmentation_misses_it():
    labels = label_frame(np.zeros((200, 200), np.float32), upright_face())
    assert labels[80, 100] == MASK_HEAD and labels[85, 75] == MASK_HEAD
    assert labels[150, 100] == MASK_BACKGROUND


def test_neck_line_follows_a_tilted_head():
    pts = upright_face()
    # Tilt the face 90°: the face's "up" now points along +x in the image.
    tilted = np.stack([200 - pts[:, 1], pts[:, 0]], 1)
    person = np.ones((200, 200), np.float32)
    labels = label_frame(person, tilted)
    chin_x = 200 - 120
    assert labels[100, chin_x - 10] == MASK_HEAD        # just "below" the chin along the face's axis: neck
    assert labels[100, chin_x - 60] == MASK_TORSO


def test_background_plate_is_the_median_background_and_fills_holes():
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
    frames, labels = [], []
    for i in range(9):
        frame = background.copy()
        lab = np.zeros((32, 32), np.uint8)
        x = 2 + 2 * i
        frame[8:24, x:x + 8] = 255                      # a moving "person"
        lab[8:24, x:x + 8] = MASK_HEAD
        frame[0:4, 0:4] = rng.integers(0, 256, size=(4, 4, 3))   # noise in one corner, always labelled person
        lab[0:4, 0:4] = MASK_TORSO
        frames.append(frame)
        labels.append(lab)
    plate = background_plate(np.array(frames), np.array(labels), MaskConfig(background_erode_px=0))
    assert plate.shape == (32, 32, 3) and plate.dtype == np.uint8
    visible = np.ones((32, 32), bool)
    visible[0:4, 0:4] = False
    np.testing.assert_array_equal(plate[visible], background[visible])
    # The never-seen corner is inpainted from its surroundings, not left black.
    assert plate[0:4, 0:4].mean() > 30


def test_plate_validates_shapes_and_mask_config():
    with pytest.raises(ValueError, match="disagree"):
        background_plate(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 4), np.uint8))
    with pytest.raises(ValueError):
        MaskConfig(threshold=1.5)
