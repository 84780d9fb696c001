"""Named expression controls measured from a clip's tracked MediaPipe landmarks (2-D, 478 points).

MediaPipe's blendshape model is not in the 0.10.21 wheel, so each control is our own geometric measure
(a lip gap, an eyelid gap, a brow height…) taken in a face frame that removes the in-plane roll and the
scale: x runs from the right to the left outer eye corner, lengths along x are divided by the eye
distance and lengths along y by the eye-line-to-nose-tip height (both rigid). A measure becomes a
control in 0..1 per subject: 0 at a rest percentile of the clip, 1 at a full percentile, so a subject who
barely opens the mouth still gets a jawOpen that reaches 1 at their widest opening.

Names follow Apple ARKit's blendshapes where one fits; "Left"/"Right" are the subject's own sides
(MediaPipe's ``LEFT_EYE`` is the subject's left eye), as in ARKit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dyntet.data.landmark_regions import NUM_LANDMARKS

# MediaPipe face-mesh indices (subject's sides).
R_EYE_OUT, R_EYE_IN, L_EYE_OUT, L_EYE_IN = 33, 133, 263, 362
R_LID_UP, R_LID_DOWN, L_LID_UP, L_LID_DOWN = 159, 145, 386, 374
NOSE_TIP, LOWER_LIP_OUT = 1, 17
LIP_UP_IN, LIP_DOWN_IN = 13, 14
MOUTH_R, MOUTH_L = 61, 291
R_BROW_IN, L_BROW_IN, R_BROW_OUT, L_BROW_OUT = 107, 336, 70, 300
R_LIP_DOWN, L_LIP_DOWN = 84, 314
R_LIP_UP, L_LIP_UP = 40, 270


@dataclass(frozen=True)
class ControlSpec:
    """One control: which measure, and which side of the clip's distribution is 0 and 1."""

    name: str
    measure: str
    rest: float
    """Percentile of the clip's measure that maps to 0."""
    full: float
    """Percentile that maps to 1 (below ``rest`` for controls that grow as the measure shrinks)."""


CONTROLS: tuple[ControlSpec, ...] = (
    ControlSpec("jawOpen", "jaw", 5, 99),
    ControlSpec("mouthClose", "lip_gap_per_jaw", 50, 2),
    ControlSpec("mouthFunnel", "opening_roundness", 50, 99),
    ControlSpec("mouthPucker", "mouth_width", 50, 1),
    ControlSpec("mouthStretchLeft", "corner_out_left", 50, 99),
    ControlSpec("mouthStretchRight", "corner_out_right", 50, 99),
    ControlSpec("mouthSmileLeft", "corner_up_left", 50, 99),
    ControlSpec("mouthSmileRight", "corner_up_right", 50, 99),
    ControlSpec("mouthFrownLeft", "corner_up_left", 50, 1),
    ControlSpec("mouthFrownRight", "corner_up_right", 50, 1),
    ControlSpec("mouthLowerDownLeft", "lower_lip_left", 5, 99),
    ControlSpec("mouthLowerDownRight", "lower_lip_right", 5, 99),
    ControlSpec("mouthUpperUpLeft", "upper_lip_left", 5, 99),
    ControlSpec("mouthUpperUpRight", "upper_lip_right", 5, 99),
    ControlSpec("mouthLeft", "mouth_shift", 50, 99),
    ControlSpec("mouthRight", "mouth_shift", 50, 1),
    ControlSpec("eyeBlinkLeft", "lid_gap_left", 50, 1),
    ControlSpec("eyeBlinkRight", "lid_gap_right", 50, 1),
    ControlSpec("eyeWideLeft", "lid_gap_left", 50, 99),
    ControlSpec("eyeWideRight", "lid_gap_right", 50, 99),
    ControlSpec("browInnerUp", "brow_inner", 50, 99),
    ControlSpec("browDownLeft", "brow_left", 50, 1),
    ControlSpec("browDownRight", "brow_right", 50, 1),
    ControlSpec("browOuterUpLeft", "brow_outer_left", 50, 99),
    ControlSpec("browOuterUpRight", "brow_outer_right", 50, 99),
)
NAMES: tuple[str, ...] = tuple(spec.name for spec in CONTROLS)


class ControlsError(ValueError):
    """The landmarks cannot be measured; the message says what to do."""


def measures(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Scale- and roll-free geometric measures of every frame: name → float64 [T].

    Args:
        landmarks: float [T, 478, 2] image pixels (y down), MediaPipe's face mesh with iris refinement.
    """
    points = np.asarray(landmarks, np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 2):
        raise ControlsError(f"controls need MediaPipe's {NUM_LANDMARKS} landmarks per frame, got an array of shape "
                            f"{points.shape}: re-run `dyntet preprocess` on real footage")
    if not np.isfinite(points).all():
        raise ControlsError("the tracked landmarks contain NaN or infinity: re-run `dyntet preprocess`")
    eye_r, eye_l = points[:, R_EYE_OUT], points[:, L_EYE_OUT]
    x_axis = eye_l - eye_r
    width = np.linalg.norm(x_axis, axis=-1, keepdims=True)
    x_axis = x_axis / width
    up = np.stack([x_axis[:, 1], -x_axis[:, 0]], -1)  # x rotated by -90° in a y-down image: points up
    origin = 0.5 * (eye_r + eye_l)
    height = np.einsum("td,td->t", origin - points[:, NOSE_TIP], up)[:, None]
    if (width[:, 0] <= 1e-6).any() or (height[:, 0] <= 1e-6).any():
        raise ControlsError("degenerate landmarks (the eye corners coincide or the nose is above the eyes): check "
                            "the tracking with the dataset's contact sheet")
    local = points - origin[:, None]
    fx = np.einsum("tpd,td->tp", local, x_axis) / width  # +x towards the subject's left
    fy = np.einsum("tpd,td->tp", local, up) / height  # +y up

    def gap(a: int, b: int) -> np.ndarray:
        return fy[:, a] - fy[:, b]

    mouth_mid_y = 0.5 * (fy[:, MOUTH_R] + fy[:, MOUTH_L])
    centre_y = 0.5 * (fy[:, LIP_UP_IN] + fy[:, LIP_DOWN_IN])
    centre_x = 0.5 * (fx[:, LIP_UP_IN] + fx[:, LIP_DOWN_IN])
    lip_gap = gap(LIP_UP_IN, LIP_DOWN_IN)
    # The jaw carries the lower lip; MediaPipe's chin points (152, 175) follow the jaw line's shading more
    # than the bone and drift with head pitch, the lip's outer edge does not.
    jaw = fy[:, NOSE_TIP] - fy[:, LOWER_LIP_OUT]
    mouth_width = fx[:, MOUTH_L] - fx[:, MOUTH_R]
    eye_width_r = np.abs(fx[:, R_EYE_IN] - fx[:, R_EYE_OUT]) + 1e-9
    eye_width_l = np.abs(fx[:, L_EYE_IN] - fx[:, L_EYE_OUT]) + 1e-9
    return {
        "jaw": jaw,
        "lip_gap_per_jaw": lip_gap / jaw,
        "opening_roundness": lip_gap / mouth_width,
        "mouth_width": mouth_width,
        "corner_out_left": fx[:, MOUTH_L] - fx[:, NOSE_TIP],
        "corner_out_right": fx[:, NOSE_TIP] - fx[:, MOUTH_R],
        "corner_up_left": fy[:, MOUTH_L] - centre_y,
        "corner_up_right": fy[:, MOUTH_R] - centre_y,
        "lower_lip_left": mouth_mid_y - fy[:, L_LIP_DOWN],
        "lower_lip_right": mouth_mid_y - fy[:, R_LIP_DOWN],
        "upper_lip_left": fy[:, L_LIP_UP] - mouth_mid_y,
        "upper_lip_right": fy[:, R_LIP_UP] - mouth_mid_y,
        "mouth_shift": centre_x - fx[:, NOSE_TIP],
        "lid_gap_left": gap(L_LID_UP, L_LID_DOWN) * height[:, 0] / width[:, 0] / eye_width_l,
        "lid_gap_right": gap(R_LID_UP, R_LID_DOWN) * height[:, 0] / width[:, 0] / eye_width_r,
        "brow_inner": 0.5 * (fy[:, R_BROW_IN] + fy[:, L_BROW_IN]),
        "brow_left": 0.5 * (fy[:, L_BROW_IN] + fy[:, L_BROW_OUT]),
        "brow_right": 0.5 * (fy[:, R_BROW_IN] + fy[:, R_BROW_OUT]),
        "brow_outer_left": fy[:, L_BROW_OUT],
        "brow_outer_right": fy[:, R_BROW_OUT],
    }


@dataclass
class Normalisation:
    """Per-subject 0 and 1 of every control, in the units of its measure (saved with the map)."""

    zero: np.ndarray
    """float64 [C]."""
    one: np.ndarray
    """float64 [C]."""

    @classmethod
    def fit(cls, measured: dict[str, np.ndarray]) -> Normalisation:
        zero = np.array([np.percentile(measured[s.measure], s.rest) for s in CONTROLS])
        one = np.array([np.percentile(measured[s.measure], s.full) for s in CONTROLS])
        flat = np.abs(one - zero) < 1e-9
        if flat.any():
            bad = ", ".join(n for n, f in zip(NAMES, flat) if f)
            raise ControlsError(f"the clip never moves {bad}: controls need a clip with some expression")
        return cls(zero, one)

    def apply(self, measured: dict[str, np.ndarray], limit: float = 1.5) -> np.ndarray:
        """Controls float32 [T, C]: 0 at rest, 1 at full, clipped to [0, ``limit``]."""
        raw = np.stack([measured[s.measure] for s in CONTROLS], -1)
        return np.clip((raw - self.zero) / (self.one - self.zero), 0.0, limit).astype(np.float32)
