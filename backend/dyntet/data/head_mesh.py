"""Procedural head and torso meshes for the synthetic subject.

The head is a closed, star-shaped surface: an icosphere (vertices pulled towards the face so the face
gets about twice the resolution of the back) mapped onto an ellipsoid and shaped by smooth bumps —
nose, brows, eye sockets, cheeks, lips, chin, ears, a tapered jaw and a raised skull base. Facial
features sit where the reference face image puts them (:class:`FaceLayout`), so the texture's eyes,
nose and mouth land on the geometry's eyes, nose and mouth.

Everything is in head space (metres, +Y up, +Z out of the face, +X to the subject's left; see
``docs/architecture.md``). The icosphere keeps the vertices of coarser levels first: vertex ``i`` of
level ``l`` is vertex ``i`` of every finer level, which lets the face model reuse a coarser subset of
the head's own vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Landmarks of the reference face image (scikit-image's public-domain astronaut photo, 512×512), in
# image pixels (x right, y down), measured once with MediaPipe 0.10.21 face mesh. The procedural face
# image paints its features at the same places, so both textures share one layout.
REFERENCE_LANDMARKS_PX: dict[str, tuple[float, float]] = {
    "eye_r_outer": (195.2, 100.9), "eye_r_inner": (213.3, 103.7),
    "eye_l_inner": (237.0, 104.9), "eye_l_outer": (255.8, 104.3),
    "eye_r_top": (202.8, 97.6), "eye_r_bottom": (203.4, 104.3),
    "eye_l_top": (248.3, 99.7), "eye_l_bottom": (246.6, 106.7),
    "iris_r": (203.5, 101.1), "iris_l": (246.6, 103.5),
    "brow_r_inner": (215.9, 89.8), "brow_r_mid": (198.8, 86.9), "brow_r_outer": (188.1, 91.1),
    "brow_l_inner": (235.8, 91.5), "brow_l_mid": (253.0, 90.7), "brow_l_outer": (262.8, 96.0),
    "nose_bridge": (224.9, 100.5), "nose_tip": (223.4, 130.0), "subnasal": (223.4, 132.4),
    "alar_r": (210.0, 128.0), "alar_l": (237.7, 129.6),
    "mouth_r": (201.8, 139.2), "mouth_l": (245.0, 141.0),
    "lip_upper_top": (223.6, 140.5), "lip_upper_inner": (223.5, 143.2),
    "lip_lower_inner": (223.0, 150.1), "lip_lower_bottom": (222.7, 154.6),
    "mouth_gap": (223.0, 149.2),  # between the upper teeth and the lower lip: where the jaw opens
    "chin": (221.3, 177.4), "forehead": (226.3, 71.7),
    "face_r": (179.4, 110.0), "face_l": (270.2, 115.5),
    "jaw_r": (184.9, 148.3), "jaw_l": (260.8, 152.9),
    "cheek_r": (190.3, 118.4), "cheek_l": (258.4, 122.4),
}


def icosphere(level: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere subdivided ``level`` times.

    Returns:
        ``(verts float64 [V, 3], faces int64 [F, 3])`` with ``V = 10·4^level + 2``, ``F = 20·4^level``,
        faces counter-clockwise from outside. Vertices of coarser levels come first, unchanged.
    """
    if not 0 <= level <= 7:
        raise ValueError(f"icosphere level must be in 0..7, got {level}")
    t = (1.0 + 5.0 ** 0.5) / 2.0
    verts = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                      [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], np.float64)
    verts /= np.linalg.norm(verts, axis=1, keepdims=True)
    faces = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                      [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                      [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], np.int64)
    for _ in range(level):
        edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
        unique, inverse = np.unique(edges, axis=0, return_inverse=True)
        mid = verts[unique[:, 0]] + verts[unique[:, 1]]
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        ids = len(verts) + inverse.reshape(3, -1)  # midpoints of edges ab, bc, ca per face
        ab, bc, ca = ids
        a, b, c = faces.T
        faces = np.concatenate([np.stack([a, ab, ca], 1), np.stack([b, bc, ab], 1),
                                np.stack([c, ca, bc], 1), np.stack([ab, bc, ca], 1)])
        verts = np.concatenate([verts, mid])
    return verts, faces


def focus_front(directions: np.ndarray, strength: float) -> np.ndarray:
    """Pull unit directions [N, 3] towards +Z: the polar angle θ becomes ``θ − strength·sin θ``.

    A smooth, orientation-preserving map of the sphere onto itself (for ``0 ≤ strength < 1``) that makes
    the front ``1 / (1 − strength)`` times denser in each direction and the back sparser.
    """
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"focus strength must be in [0, 1), got {strength}")
    theta = np.arccos(np.clip(directions[:, 2], -1.0, 1.0))
    new_theta = theta - strength * np.sin(theta)
    radial = np.linalg.norm(directions[:, :2], axis=1)
    scale = np.where(radial > 1e-12, np.sin(new_theta) / np.maximum(radial, 1e-12), 0.0)
    return np.stack([directions[:, 0] * scale, directions[:, 1] * scale, np.cos(new_theta)], 1)


def focus_band(directions: np.ndarray, centre: float, strength: float, width: float) -> np.ndarray:
    """Pull unit directions [N, 3] towards the latitude ``y = centre``, keeping their longitude.

    ``y ↦ y − strength·(y − centre)·exp(−((y − centre)/width)²)``: monotone for ``0 ≤ strength < 1``,
    so triangles keep their orientation; near the band vertices are ``1 / (1 − strength)`` times closer
    in latitude. Used to give the mouth, which opens along a line, the resolution it needs.
    """
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"band strength must be in [0, 1), got {strength}")
    y = directions[:, 1]
    u = (y - centre) / width
    new_y = np.clip(y - strength * (y - centre) * np.exp(-u * u), -1.0, 1.0)
    old_r = np.sqrt(np.clip(1.0 - y * y, 0.0, None))
    scale = np.where(old_r > 1e-12, np.sqrt(np.clip(1.0 - new_y * new_y, 0.0, None)) / np.maximum(old_r, 1e-12), 0.0)
    return np.stack([directions[:, 0] * scale, new_y, directions[:, 2] * scale], 1)


@dataclass(frozen=True)
class HeadIdentity:
    """Proportions and colours of one synthetic person (all lengths in metres, colours linear RGB)."""

    head_width: float = 0.156
    """Ear-to-ear breadth of the skull (before ears)."""
    head_height: float = 0.230
    """Crown to the bottom of the skull ellipsoid."""
    head_depth: float = 0.195
    """Face to back of the head."""
    eye_spacing: float = 0.062
    """Distance between the pupils; sets the scale of the face texture."""
    eye_height: float = 0.010
    """Y of the pupils."""
    mouth_height: float = -0.062
    """Y of the mouth line."""
    nose_size: float = 1.0
    """Multiplies nose protrusion and width."""
    jaw_width: float = 0.90
    """Width of the jaw at the chin relative to the skull (1 = no taper)."""
    chin_forward: float = 0.010
    """How far the chin sticks out."""
    cheek_fullness: float = 0.006
    """Height of the cheekbone bumps."""
    skin_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Multiplies the face image's (linear) colours."""
    hair_color: tuple[float, float, float] = (0.20, 0.12, 0.06)
    shirt_color: tuple[float, float, float] = (0.10, 0.18, 0.35)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "HeadIdentity":
        """A random but plausible person: proportions within ±5–10 % and varied skin, hair and shirt."""
        def jitter(value: float, rel: float) -> float:
            return float(value * (1.0 + rel * rng.uniform(-1.0, 1.0)))
        tint = np.array([1.0, 0.93, 0.86]) ** rng.uniform(-1.0, 2.5) * rng.uniform(0.75, 1.15)
        hair = rng.choice([[0.02, 0.015, 0.01], [0.20, 0.12, 0.06], [0.45, 0.30, 0.14], [0.25, 0.07, 0.03],
                           [0.30, 0.29, 0.27]]) * rng.uniform(0.8, 1.2)
        shirt = rng.uniform(0.03, 0.45, 3)
        return cls(head_width=jitter(0.156, 0.05), head_height=jitter(0.230, 0.05),
                   head_depth=jitter(0.195, 0.05), eye_spacing=jitter(0.062, 0.06),
                   eye_height=0.010 + rng.uniform(-0.006, 0.006), mouth_height=-0.062 + rng.uniform(-0.006, 0.006),
                   nose_size=jitter(1.0, 0.2), jaw_width=jitter(0.90, 0.06), chin_forward=jitter(0.010, 0.4),
                   cheek_fullness=jitter(0.006, 0.4), skin_tint=tuple(float(c) for c in tint),
                   hair_color=tuple(float(c) for c in hair), shirt_color=tuple(float(c) for c in shirt))


@dataclass(frozen=True)
class FaceLayout:
    """Where the face image's features land in head space: an affine map image pixels → head (x, y).

    Fixed by three correspondences — the two pupils at ``(∓eye_spacing/2, eye_height)`` (the subject's
    right eye is on the image's left and at −X) and the mouth centre at ``(0, mouth_height)``.
    """

    affine: np.ndarray
    """float64 [2, 3]: ``[x, y] = affine @ [px, py, 1]``."""

    @classmethod
    def from_identity(cls, identity: HeadIdentity) -> "FaceLayout":
        lm = REFERENCE_LANDMARKS_PX
        mouth = 0.5 * (np.array(lm["lip_upper_inner"]) + np.array(lm["lip_lower_inner"]))
        src = np.array([[*lm["iris_r"], 1.0], [*lm["iris_l"], 1.0], [*mouth, 1.0]])
        half = identity.eye_spacing / 2
        dst = np.array([[-half, identity.eye_height], [half, identity.eye_height], [0.0, identity.mouth_height]])
        return cls(np.linalg.solve(src, dst).T)

    def to_head(self, pixels: np.ndarray) -> np.ndarray:
        """Image pixels [..., 2] → head-space (x, y) [..., 2]."""
        return pixels @ self.affine[:, :2].T + self.affine[:, 2]

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Head-space (x, y) [..., 2] → image pixels [..., 2]."""
        inverse = np.linalg.inv(self.affine[:, :2])
        return (xy - self.affine[:, 2]) @ inverse.T

    def point(self, name: str) -> np.ndarray:
        """Head-space (x, y) of a named reference landmark."""
        return self.to_head(np.array(REFERENCE_LANDMARKS_PX[name]))

    def mouth_gap_y(self, x: np.ndarray) -> np.ndarray:
        """Head-space y [N] of the line the mouth opens along, at head-space x [N].

        A parabola through the two mouth corners and the middle of the gap between the upper teeth and
        the lower lip; constant beyond the corners.
        """
        pts = np.stack([self.point("mouth_r"), self.point("mouth_gap"), self.point("mouth_l")])
        coeffs = np.polyfit(pts[:, 0], pts[:, 1], 2)
        return np.polyval(coeffs, np.clip(x, pts[0, 0], pts[2, 0]))

    @property
    def metres_per_pixel(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.affine[:, :2]))))


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """C¹ ramp from 0 at ``edge0`` to 1 at ``edge1`` (either order)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gaussian(x: np.ndarray, y: np.ndarray, centre: np.ndarray, sigma: tuple[float, float]) -> np.ndarray:
    """Anisotropic Gaussian bump of height 1 at ``centre`` (x, y)."""
    return np.exp(-0.5 * (((x - centre[0]) / sigma[0]) ** 2 + ((y - centre[1]) / sigma[1]) ** 2))


def front_weight(z: np.ndarray, depth: float) -> np.ndarray:
    """1 on the face side of the head, 0 behind the ears: features and expressions live where this is > 0."""
    return smoothstep(0.15 * depth, 0.40 * depth, z)


def shape_head(directions: np.ndarray, identity: HeadIdentity, layout: FaceLayout) -> np.ndarray:
    """Neutral head surface: unit directions [N, 3] → head-space points float64 [N, 3]."""
    ax, ay, az = identity.head_width / 2, identity.head_height / 2, identity.head_depth / 2
    x, y, z = directions[:, 0] * ax, directions[:, 1] * ay, directions[:, 2] * az
    # Cheeks and jaw: the lower head keeps its width longer than an ellipsoid does.
    x = x * (1.0 + 0.35 * np.minimum(directions[:, 1], 0.0) ** 2)
    # Lower face: the front below the eyes drops to make room for the mouth and the chin.
    y = y * (1.0 + 0.38 * smoothstep(0.0, -0.5, y / ay) * smoothstep(-0.2, 0.6, z / az))
    # Skull base: the back of the head ends well above the chin; the neck enters there.
    back_low = smoothstep(0.1, -0.7, z / az) * smoothstep(0.0, -1.0, y / ay)
    y = y * (1.0 - 0.30 * back_low)
    # Jaw: the lower head narrows towards the chin.
    x = x * (1.0 - (1.0 - identity.jaw_width) * smoothstep(0.1 * ay, -0.9 * ay, y))
    # Flatten the face a little: the front is broader than an ellipsoid's.
    z = z + 0.012 * (smoothstep(0.0, 0.8, z / az) * smoothstep(1.0, 0.2, np.abs(x) / ax)
                     * smoothstep(-1.0, -0.3, y / ay) * smoothstep(1.0, 0.5, y / ay))
    front = front_weight(z, identity.head_depth)
    p = layout.point
    n = identity.nose_size
    eye_r, eye_l = p("iris_r"), p("iris_l")
    bridge, tip, sub = p("nose_bridge"), p("nose_tip"), p("subnasal")
    mouth_y = identity.mouth_height
    bumps = (
        # nose: a ridge growing from the bridge to the tip, the tip, and the nostril wings
        0.010 * n * gaussian(x, y, (bridge + tip) / 2, (0.0065 * n, 0.020)) * smoothstep(bridge[1] + 0.01, tip[1], y)
        + 0.013 * n * gaussian(x, y, tip + [0.0, 0.002], (0.0085 * n, 0.0085))
        + 0.006 * n * gaussian(x, y, p("alar_r") + [0.001, 0.0], (0.0055, 0.005))
        + 0.006 * n * gaussian(x, y, p("alar_l") - [0.001, 0.0], (0.0055, 0.005))
        - 0.003 * gaussian(x, y, sub - [0.0, 0.004], (0.004, 0.003))
        # eye sockets with a slight eyeball bulge, brow ridge above them
        - 0.007 * gaussian(x, y, eye_r + [0.0, 0.002], (0.015, 0.011))
        - 0.007 * gaussian(x, y, eye_l + [0.0, 0.002], (0.015, 0.011))
        + 0.003 * gaussian(x, y, eye_r, (0.008, 0.005)) + 0.003 * gaussian(x, y, eye_l, (0.008, 0.005))
        + 0.005 * gaussian(x, y, p("brow_r_mid") + [0.0, 0.002], (0.020, 0.007))
        + 0.005 * gaussian(x, y, p("brow_l_mid") + [0.0, 0.002], (0.020, 0.007))
        # cheekbones
        + identity.cheek_fullness * (gaussian(x, y, p("cheek_r"), (0.016, 0.014))
                                     + gaussian(x, y, p("cheek_l"), (0.016, 0.014)))
        # lips and the mouth line
        + 0.006 * gaussian(x, y, np.array([0.0, mouth_y + 0.005]), (0.020, 0.005))
        + 0.006 * gaussian(x, y, np.array([0.0, mouth_y - 0.007]), (0.018, 0.005))
        - 0.0015 * gaussian(x, y, np.array([0.0, mouth_y]), (0.020, 0.003))
        # chin
        + identity.chin_forward * gaussian(x, y, p("chin") + [0.0, 0.012], (0.018, 0.013))
    )
    z = z + front * bumps
    # Ears: flat bumps on the sides, a little behind the middle, at eye-to-nose height.
    side = smoothstep(0.6 * ax, 0.9 * ax, np.abs(x))
    ear = 0.016 * np.exp(-0.5 * (((y - identity.eye_height + 0.018) / 0.022) ** 2 + ((z + 0.010) / 0.012) ** 2))
    x = x + np.sign(x) * side * ear
    return np.stack([x, y, z], 1)


@dataclass(frozen=True)
class HeadMesh:
    """The neutral head: vertices float64 [V, 3] (head space), faces int64 [F, 3] (CCW outward)."""

    vertices: np.ndarray
    faces: np.ndarray
    directions: np.ndarray
    """float64 [V, 3] unit directions the vertices were made from (after the front focus)."""


MOUTH_BAND = (0.6, 0.07)
"""Strength and half width (in latitude) of the extra resolution around the mouth line."""


def head_directions(directions: np.ndarray, identity: HeadIdentity, layout: FaceLayout,
                    focus: float) -> np.ndarray:
    """Icosphere directions [N, 3] → the directions the head is shaped from: denser on the face and
    along the mouth line (whose latitude is found by a search down the face's middle)."""
    angles = np.linspace(-0.2, 1.4, 2001)  # below the horizon, down the front meridian
    probe = np.stack([np.zeros_like(angles), -np.sin(angles), np.cos(angles)], 1)
    probe_y = shape_head(focus_front(probe, focus), identity, layout)[:, 1]
    gap_y = layout.point("mouth_gap")[1]
    mouth_latitude = probe[np.argmin(np.abs(probe_y - gap_y)), 1]
    banded = focus_band(directions, mouth_latitude, *MOUTH_BAND)
    return focus_front(banded, focus)


def build_head(identity: HeadIdentity, layout: FaceLayout, level: int = 5, focus: float = 0.4) -> HeadMesh:
    """Head mesh from an icosphere of ``level`` (level 5: 10 242 vertices, 20 480 faces)."""
    directions, faces = icosphere(level)
    directions = head_directions(directions, identity, layout, focus)
    return HeadMesh(shape_head(directions, identity, layout), faces, directions)


def lathe(profile: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed surface of elliptic rings, capped top and bottom.

    Args:
        profile: float [R, 4] rows ``(y, radius_x, radius_z, centre_z)`` from top to bottom (y decreasing).
        segments: points per ring.

    Returns:
        ``(verts float64 [R·segments + 2, 3], faces int64 [F, 3])``, CCW from outside.
    """
    if profile.ndim != 2 or profile.shape[1] != 4 or len(profile) < 2 or np.any(np.diff(profile[:, 0]) >= 0):
        raise ValueError("profile must be [R >= 2, 4] rows (y, rx, rz, cz) with y strictly decreasing")
    angle = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    rings = [np.stack([r_x * np.sin(angle), np.full(segments, y), c_z + r_z * np.cos(angle)], 1)
             for y, r_x, r_z, c_z in profile]
    top = np.array([[0.0, profile[0, 0], profile[0, 3]]])
    bottom = np.array([[0.0, profile[-1, 0], profile[-1, 3]]])
    verts = np.concatenate(rings + [top, bottom])
    faces = []
    j = np.arange(segments)
    k = (j + 1) % segments
    for r in range(len(profile) - 1):
        a, b = r * segments + j, (r + 1) * segments + j
        c, d = r * segments + k, (r + 1) * segments + k
        faces += [np.stack([a, b, d], 1), np.stack([a, d, c], 1)]
    top_id, bottom_id = len(verts) - 2, len(verts) - 1
    last = (len(profile) - 1) * segments
    faces += [np.stack([np.full(segments, top_id), j, k], 1),
              np.stack([np.full(segments, bottom_id), last + k, last + j], 1)]
    return verts, np.concatenate(faces).astype(np.int64)


def build_torso(identity: HeadIdentity, segments: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Neck and shoulders in the head's rest frame: ``(verts float64 [V, 3], faces int64 [F, 3])``.

    The neck starts inside the head (so no gap opens when the head turns a few degrees) and the
    shoulders run out of the frame below.
    """
    w = identity.head_width / 0.150
    profile = np.array([
        # y,     rx,          rz,     cz
        [-0.045, 0.046 * w, 0.046, -0.020],
        [-0.100, 0.050 * w, 0.050, -0.022],
        [-0.150, 0.056 * w, 0.054, -0.026],
        [-0.175, 0.080 * w, 0.066, -0.030],
        [-0.195, 0.130 * w, 0.085, -0.035],
        [-0.220, 0.170 * w, 0.100, -0.040],
        [-0.260, 0.195 * w, 0.110, -0.045],
        [-0.340, 0.210 * w, 0.115, -0.045],
        [-0.600, 0.215 * w, 0.118, -0.045],
    ])
    return lathe(profile, segments)
