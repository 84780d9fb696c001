"""Appearance of the synthetic subject: a face image projected onto the head, skin, hair, shirt, backdrop.

The face image is either scikit-image's public-domain astronaut photo (``skimage.data.astronaut()``,
shipped inside the scikit-image wheel — nothing is downloaded) or a procedural painting with its
features at the same places (:data:`~dyntet.data.head_mesh.REFERENCE_LANDMARKS_PX`). It is projected
along −Z onto the front of the neutral head through :class:`~dyntet.data.head_mesh.FaceLayout`, inside a
soft oval around the face; the rest of the head is the face's own skin colour, with hair on the top and
back. Every colour is a function of the *canonical* (neutral) surface point, never of the expression,
which is exactly what DynTet's appearance field G(x̄) can represent.

Colours are linear RGB in [0, 1]; images on disk are sRGB.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter

from dyntet.data.head_mesh import REFERENCE_LANDMARKS_PX, FaceLayout, HeadIdentity, smoothstep

FaceImage = Literal["astronaut", "procedural"]
REFERENCE_SIZE = 512
"""Side of the face image in pixels (the landmarks refer to it)."""
FACE_OVAL_PX = (224.5, 126.0, 44.0, 51.0)
"""Centre x, centre y, half width, half height (image pixels) of the oval the face image is used in."""


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] → linear (IEC 61966-2-1)."""
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear values → sRGB in [0, 1] (clamped)."""
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1.0 / 2.4) - 0.055)


def reference_face_image(kind: FaceImage) -> np.ndarray:
    """The face image: uint8 [512, 512, 3] sRGB."""
    if kind == "astronaut":
        try:
            from skimage import data as skimage_data
        except ImportError as err:
            raise RuntimeError("the astronaut face texture needs scikit-image (pip install scikit-image==0.25.2); "
                               "or use texture='procedural'") from err
        image = np.asarray(skimage_data.astronaut())
        if image.shape != (REFERENCE_SIZE, REFERENCE_SIZE, 3):
            raise RuntimeError(f"skimage.data.astronaut() returned {image.shape}, expected 512×512 RGB")
    elif kind == "procedural":
        image = paint_procedural_face()
    else:
        raise ValueError(f"unknown face image {kind!r}: use 'astronaut' or 'procedural'")
    return paint_mouth_gap(image)


def paint_mouth_gap(image: np.ndarray) -> np.ndarray:
    """Draw the thin dark line the mouth opens along (uint8 [512, 512, 3] → a painted copy).

    The jaw blend shape splits the face along this line, so when the mouth opens the stretched band
    between the upper teeth and the lower lip shows this dark colour: the mouth's inside.
    """
    yy, xx = np.mgrid[0:REFERENCE_SIZE, 0:REFERENCE_SIZE].astype(np.float64) + 0.5
    pts = np.array([_lm("mouth_r"), _lm("mouth_gap"), _lm("mouth_l")])
    curve = np.polyval(np.polyfit(pts[:, 0], pts[:, 1], 2), np.clip(xx, pts[0, 0], pts[2, 0]))
    inside = smoothstep(pts[0, 0] - 1.0, pts[0, 0] + 3.0, xx) * smoothstep(pts[2, 0] + 1.0, pts[2, 0] - 3.0, xx)
    # The band reaches further up (into the teeth) than down: triangles that stretch when the jaw opens
    # span up to about one vertex row above the split, and must find only dark texture there.
    band = ((yy - curve >= -3.4) & (yy - curve <= 2.2)).astype(np.float64)
    weight = (gaussian_filter(band, 0.5) * inside)[..., None]
    out = image / 255.0 * (1.0 - weight) + np.array([55, 22, 22]) / 255.0 * weight
    return np.round(out * 255.0).astype(np.uint8)


def _lm(name: str) -> np.ndarray:
    return np.array(REFERENCE_LANDMARKS_PX[name])


def paint_procedural_face() -> np.ndarray:
    """A smooth painted face with its features at the reference landmarks: uint8 [512, 512, 3] sRGB."""
    yy, xx = np.mgrid[0:REFERENCE_SIZE, 0:REFERENCE_SIZE].astype(np.float64) + 0.5
    image = np.empty((REFERENCE_SIZE, REFERENCE_SIZE, 3))
    image[:] = np.array([222, 176, 148]) / 255.0
    cx, cy, rx, ry = FACE_OVAL_PX
    rim = np.clip(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2, 0.0, 1.5)
    image *= (1.0 - 0.18 * rim ** 2)[..., None]  # soft baked shading towards the face's edge

    def paint(weight: np.ndarray, colour: tuple[float, float, float], blur: float = 1.0) -> None:
        w = gaussian_filter(np.clip(weight, 0.0, 1.0), blur)[..., None]
        image[:] = image * (1.0 - w) + np.array(colour) / 255.0 * w

    def ellipse(centre: np.ndarray, rx_: float, ry_: float) -> np.ndarray:
        return (((xx - centre[0]) / rx_) ** 2 + ((yy - centre[1]) / ry_) ** 2 <= 1.0).astype(np.float64)

    def stroke(points: list[np.ndarray], radius: float) -> np.ndarray:
        dist = np.full(xx.shape, np.inf)
        for a, b in zip(points[:-1], points[1:]):
            ab = b - a
            t = np.clip(((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / (ab @ ab), 0.0, 1.0)
            dist = np.minimum(dist, np.hypot(xx - a[0] - t * ab[0], yy - a[1] - t * ab[1]))
        return (dist <= radius).astype(np.float64)

    paint((yy < 68 + 0.02 * (xx - cx) ** 2) | (rim > 1.0) & (yy < 112), (120, 80, 45), 2.0)  # hair
    for s in ("r", "l"):
        inner, outer = _lm(f"eye_{s}_inner"), _lm(f"eye_{s}_outer")
        top, bottom, iris = _lm(f"eye_{s}_top"), _lm(f"eye_{s}_bottom"), _lm(f"iris_{s}")
        centre = (inner + outer) / 2
        half_w, half_h = abs(outer[0] - inner[0]) / 2, abs(bottom[1] - top[1]) / 2
        sclera = ellipse(np.array([centre[0], (top[1] + bottom[1]) / 2]), half_w, half_h)
        paint(sclera, (235, 230, 225), 0.7)
        paint(ellipse(iris, 3.6, 3.6) * sclera, (90, 60, 40), 0.7)
        paint(ellipse(iris, 1.5, 1.5), (15, 10, 10), 0.6)
        paint(stroke([inner, np.array([centre[0], top[1] - 0.5]), outer], 0.9), (40, 25, 20), 0.6)
        paint(stroke([_lm(f"brow_{s}_inner"), _lm(f"brow_{s}_mid"), _lm(f"brow_{s}_outer")], 2.0), (90, 60, 40), 1.0)
        alar = _lm(f"alar_{s}")
        paint(ellipse(alar + np.array([(_lm("subnasal")[0] - alar[0]) * 0.45, 2.0]), 3.0, 1.6), (95, 55, 45), 0.8)
    corner_r, corner_l = _lm("mouth_r"), _lm("mouth_l")
    upper = [corner_r, _lm("lip_upper_top"), corner_l]
    lower = [corner_r, _lm("lip_lower_bottom"), corner_l]
    lips = ((yy >= np.interp(xx, [p[0] for p in upper], [p[1] for p in upper]))
            & (yy <= np.interp(xx, [p[0] for p in lower], [p[1] for p in lower]))
            & (xx >= corner_r[0]) & (xx <= corner_l[0])).astype(np.float64)
    paint(lips, (175, 92, 88), 0.8)
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def face_oval_weight(pixels: np.ndarray, softness: float = 10.0) -> np.ndarray:
    """Weight [...] in [0, 1] of the face image at image pixels [..., 2]: 1 inside the face oval."""
    cx, cy, rx, ry = FACE_OVAL_PX
    d = (np.abs((pixels[..., 0] - cx) / rx) ** 2.5 + np.abs((pixels[..., 1] - cy) / ry) ** 2.5) ** (1 / 2.5)
    return smoothstep(1.0, 1.0 - softness / ry, d)


def skin_colour(face_linear: np.ndarray) -> np.ndarray:
    """Skin colour [3] (linear) matching the rim of the face oval, so the face image fades in unseen.

    The median over a band just inside the lower half of the oval (cheeks and jaw, clear of hair) of a
    face image float [512, 512, 3] (linear).
    """
    yy, xx = np.mgrid[0:REFERENCE_SIZE, 0:REFERENCE_SIZE].astype(np.float64) + 0.5
    weight = face_oval_weight(np.stack([xx, yy], -1))
    band = (weight > 0.05) & (weight < 0.9) & (yy > FACE_OVAL_PX[1] + 10)
    return np.median(face_linear[band], axis=0)


def hair_weight(neutral: np.ndarray, identity: HeadIdentity, layout: FaceLayout) -> np.ndarray:
    """1 where the neutral head [N, 3] has hair: above a hairline at the forehead, lower at the back."""
    az = identity.head_depth / 2
    z = neutral[:, 2]
    forehead_y = layout.point("forehead")[1]
    line = -0.035 + (identity.eye_height + 0.030 + 0.035) * smoothstep(-0.7 * az, 0.0, z)
    line = line + (forehead_y + 0.004 - identity.eye_height - 0.030) * smoothstep(0.35 * az, 0.75 * az, z)
    return smoothstep(line - 0.004, line + 0.004, neutral[:, 1])


def head_base_colour(neutral: np.ndarray, identity: HeadIdentity, layout: FaceLayout,
                     skin: np.ndarray) -> np.ndarray:
    """Per-vertex linear colour [N, 3] of the head outside the face image: skin and hair."""
    hair = hair_weight(neutral, identity, layout)[:, None]
    # A gentle, low-frequency variation so the hair is not a flat colour (no fine strands).
    wave = 1.0 + 0.12 * np.sin(60.0 * neutral[:, 0] + 35.0 * neutral[:, 2]) * np.sin(45.0 * neutral[:, 1])
    return skin * (1.0 - hair) + np.array(identity.hair_color) * wave[:, None] * hair


def torso_base_colour(verts: np.ndarray, identity: HeadIdentity, skin: np.ndarray) -> np.ndarray:
    """Per-vertex linear colour [N, 3] of neck and shoulders: skin above a collar, shirt below."""
    collar = smoothstep(-0.158, -0.168, verts[:, 1] - 0.01 * np.cos(np.arctan2(verts[:, 0], verts[:, 2] + 0.04)))
    neck_skin = skin * 0.85  # the neck sits in the jaw's shadow
    return neck_skin * (1.0 - collar[:, None]) + np.array(identity.shirt_color) * collar[:, None]


def background_plate(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth studio backdrop: float32 [size, size, 3] linear, vertical gradient plus two soft glows."""
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float64) + 0.5) / size
    top = rng.uniform(0.15, 0.55, 3)
    bottom = top * rng.uniform(0.35, 0.8)
    plate = top * (1.0 - yy[..., None]) + bottom * yy[..., None]
    for _ in range(2):
        centre, radius = rng.uniform(0.0, 1.0, 2), rng.uniform(0.25, 0.6)
        glow = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * radius ** 2))
        plate = plate + rng.uniform(0.05, 0.2) * rng.uniform(0.6, 1.0, 3) * glow[..., None]
    return np.clip(plate, 0.0, 1.0).astype(np.float32)
