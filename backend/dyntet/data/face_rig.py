"""Expression rig of the synthetic head: linear blend shapes, and the exact linear face model they give.

Each control ``k`` moves a neutral head-space point ``p`` by ``α_k · D_k(p)``, where ``D_k`` is a smooth
analytic field of the *neutral* position (a linearised jaw rotation, Gaussian-weighted lip, cheek and
brow offsets, an eyelid squash). Because the rig is linear in α and the fields are evaluated at
points, any subset of the head's vertices carries an exact linear face model: ``mean_shape`` = neutral
points (α = 0), ``expression_basis[k]`` = ``D_k`` at those points.

Blinks are geometric: inside the eye opening the surface is squashed vertically onto the lid line, so
at α = 1 the textured eye (iris, white, lashes) collapses to a thin dark line and the eyelid skin above
it slides down to cover — no texture change is involved, and the appearance stays a function of the
canonical surface point only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dyntet.formats.dataset import FaceModel
from dyntet.data.head_mesh import FaceLayout, HeadIdentity, front_weight, gaussian, icosphere, smoothstep

RIG_CONTROLS: tuple[str, ...] = ("jaw_open", "smile_left", "smile_right", "pucker",
                                 "blink_left", "blink_right", "brow_raise", "mouth_stretch")
"""Names of the rig controls, in the order of α (K = 8). "left" is the subject's left (+X)."""

JAW_ANGLE = 0.22
"""Jaw rotation in radians at ``jaw_open = 1`` (linearised: the blend shape is ω × r)."""


def _corner(layout: FaceLayout, side: str) -> np.ndarray:
    return layout.point("mouth_l" if side == "left" else "mouth_r")


def _eye_box(layout: FaceLayout, side: str) -> tuple[np.ndarray, float, float]:
    """Centre of the eye opening, its half width and half height (head space, metres)."""
    s = "l" if side == "left" else "r"
    inner, outer = layout.point(f"eye_{s}_inner"), layout.point(f"eye_{s}_outer")
    top, bottom = layout.point(f"eye_{s}_top"), layout.point(f"eye_{s}_bottom")
    centre = np.array([(inner[0] + outer[0]) / 2, (top[1] + bottom[1]) / 2])
    return centre, abs(outer[0] - inner[0]) / 2, abs(top[1] - bottom[1]) / 2


def blend_shapes(points: np.ndarray, identity: HeadIdentity, layout: FaceLayout) -> np.ndarray:
    """Blend-shape displacements at neutral points.

    Args:
        points: float [N, 3] neutral head-space points (on the head built from the same identity/layout).

    Returns:
        float64 [K, N, 3] displacements ``D_k`` in metres at ``α_k = 1``, K = ``len(RIG_CONTROLS)``.
    """
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    front = front_weight(z, identity.head_depth)[:, None]
    mouth_y = identity.mouth_height
    corner_x = abs(_corner(layout, "left")[0] - _corner(layout, "right")[0]) / 2
    shapes = np.zeros((len(RIG_CONTROLS), len(points), 3))

    # jaw_open: rotate everything below the mouth gap (upper teeth | lower lip) about an axis just below
    # the ears. The split is sharp between the lips — the thin dark gap line of the face image stretches
    # into the open mouth — and widens past the mouth corners, where the cheeks stretch instead.
    pivot = np.array([0.0, identity.eye_height - 0.045, -0.012])
    width = 0.002 + 0.030 * smoothstep(0.8 * corner_x, corner_x + 0.025, np.abs(x))
    gap_y = layout.mouth_gap_y(x)
    below = smoothstep(gap_y + 0.5 * width, gap_y - 0.5 * width, y)
    hinge = smoothstep(-0.035, 0.035, z) * smoothstep(identity.head_width * 0.55, identity.head_width * 0.3, np.abs(x))
    weight = below * hinge
    r = points - pivot
    shapes[0] = JAW_ANGLE * np.stack([np.zeros_like(x), -r[:, 2], r[:, 1]], 1) * weight[:, None]

    # smiles: a lip corner goes up, out and back; the cheek above it lifts.
    for k, side, sign in ((1, "left", 1.0), (2, "right", -1.0)):
        corner = _corner(layout, side)
        cheek = layout.point(f"cheek_{'l' if side == 'left' else 'r'}")
        near = gaussian(x, y, corner, (0.013, 0.011))[:, None]
        lift = gaussian(x, y, cheek, (0.016, 0.012))[:, None]
        shapes[k] = near * np.array([0.0045 * sign, 0.0055, -0.002]) + lift * np.array([0.0, 0.0022, 0.0018])

    # pucker: the lips push forward and gather towards the middle.
    lips = gaussian(x, y, np.array([0.0, mouth_y]), (0.022, 0.012))
    shapes[3] = np.stack([-0.30 * x * lips, np.zeros_like(x), 0.008 * lips], 1)

    # blinks: squash the eye opening onto a lid line a little below its centre.
    for k, side in ((4, "left"), (5, "right")):
        centre, half_w, half_h = _eye_box(layout, side)
        lid_y = centre[1] - 0.25 * half_h
        inside = np.exp(-(((x - centre[0]) / (1.3 * half_w)) ** 4) - ((y - lid_y) / (1.7 * half_h)) ** 6)
        shapes[k, :, 1] = -(y - lid_y) * inside

    # brow_raise: both brows and the forehead skin below the hairline go up.
    brows = (gaussian(x, y, layout.point("brow_r_mid"), (0.026, 0.016))
             + gaussian(x, y, layout.point("brow_l_mid"), (0.026, 0.016)))
    shapes[6] = np.clip(brows, 0.0, 1.0)[:, None] * np.array([0.0, 0.0065, 0.0008])

    # mouth_stretch: both corners pull outwards and a little down.
    for side, sign in (("left", 1.0), ("right", -1.0)):
        near = gaussian(x, y, _corner(layout, side), (0.013, 0.011))[:, None]
        shapes[7] += near * np.array([0.005 * sign, -0.002, -0.0015])

    return shapes * front[None]


@dataclass(frozen=True)
class FaceRegion:
    """The part of the head a face model covers (head space, metres)."""

    half_width: float = 0.066
    """Cheek to cheek: |x| below this (an ellipse with the vertical extent)."""
    top_margin: float = 0.004
    """How far above the forehead landmark (the hairline) the region reaches."""
    bottom_margin: float = 0.006
    """How far below the chin landmark the region reaches."""
    min_depth: float = 0.25
    """Only points with z above this fraction of the half depth (the front of the head)."""


def face_model_subset(neutral: np.ndarray, identity: HeadIdentity, layout: FaceLayout, level: int,
                      region: FaceRegion = FaceRegion()) -> tuple[np.ndarray, np.ndarray]:
    """Pick face-model points among the head's vertices and triangulate them.

    Uses the vertices the head shares with the coarser icosphere of ``level`` (the head's first
    ``10·4^level + 2`` vertices) inside the face region, and the coarse faces whose three corners are
    all inside. Returns ``(vertex_index int64 [P], triangles int64 [F, 3])``: head-vertex indices of the
    points and faces over them (indices into ``vertex_index``), counter-clockwise from outside.
    """
    _, coarse_faces = icosphere(level)
    num_coarse = 10 * 4 ** level + 2
    if len(neutral) < num_coarse:
        raise ValueError(f"face model level {level} needs a head of at least that level "
                         f"({num_coarse} vertices), the head has {len(neutral)}")
    top = layout.point("forehead")[1] + region.top_margin
    bottom = layout.point("chin")[1] - region.bottom_margin
    p = neutral[:num_coarse]
    ellipse = (p[:, 0] / region.half_width) ** 2 + ((p[:, 1] - (top + bottom) / 2) / ((top - bottom) / 2)) ** 2
    inside = (ellipse <= 1.0) & (p[:, 2] > region.min_depth * identity.head_depth / 2)
    faces = coarse_faces[inside[coarse_faces].all(1)]
    used = np.unique(faces)
    remap = np.full(num_coarse, -1, np.int64)
    remap[used] = np.arange(len(used))
    return used.astype(np.int64), remap[faces]


def build_face_model(neutral: np.ndarray, identity: HeadIdentity, layout: FaceLayout, level: int,
                     region: FaceRegion = FaceRegion()) -> tuple[FaceModel, np.ndarray]:
    """The subject's exact linear face model and the head-vertex index [P] of each of its points."""
    index, triangles = face_model_subset(neutral, identity, layout, level, region)
    points = neutral[index]
    model = FaceModel(mean_shape=points, expression_basis=blend_shapes(points, identity, layout),
                      triangles=triangles)
    return model, index
