"""Named expression controls measured on a clip's tracked face in head space (MediaPipe's 478 points).

MediaPipe's blendshape model is not in the 0.10.21 wheel, so each control is our own geometric measure
(a lip gap, an eyelid gap, a brow height, how far the lips push forward…). The measures are taken on the
tracked landmarks in *head space* (metres; +X towards the subject's left, +Y up, +Z out of the face; see
:mod:`dyntet.face.face_model`), where head pose and camera distance are already removed: in image pixels
a nod shortens every vertical gap and a turn every horizontal one, and the map to α then learns the
pose instead of the face. Head space also gives depth, which ARKit's pucker, funnel, dimple and
jawForward need. A measure becomes a control in 0..1 per subject: 0 at a rest percentile of the clip, 1
at a full percentile, so a subject who barely opens the mouth still gets a jawOpen that reaches 1 at
their widest opening.

Names follow Apple ARKit's 52 blendshapes (all but ``tongueOut``, which no landmark sees); "Left"/"Right"
are the subject's own sides, as in ARKit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dyntet.data.landmark_regions import NUM_LANDMARKS
from dyntet.formats.dataset import FaceModel

# MediaPipe face-mesh indices (subject's sides).
R_EYE_OUT, R_EYE_IN, L_EYE_OUT, L_EYE_IN = 33, 133, 263, 362
R_LID_UP, R_LID_DOWN, L_LID_UP, L_LID_DOWN = 159, 145, 386, 374
R_IRIS, L_IRIS = 468, 473
NOSE_TIP = 1
R_NOSE_WING, L_NOSE_WING = 64, 294
UPPER_LIP_OUT, LOWER_LIP_OUT, CHIN = 0, 17, 152
LIP_UP_IN, LIP_DOWN_IN = 13, 14
MOUTH_R, MOUTH_L = 61, 291
R_BROW_IN, L_BROW_IN, R_BROW_OUT, L_BROW_OUT = 107, 336, 70, 300
R_LIP_DOWN, L_LIP_DOWN = 84, 314
R_LIP_UP, L_LIP_UP = 40, 270
R_CHEEK, L_CHEEK = 50, 280
R_CHEEK_LOW, L_CHEEK_LOW = 205, 425


@dataclass(frozen=True)
class ControlSpec:
    """One control: which measure, and which side of the clip's distribution is 0 and 1."""

    name: str
    measure: str
    rest: float
    """Percentile of the clip's measure that maps to 0."""
    full: float
    """Percentile that maps to 1 (below ``rest`` for controls that grow as the measure shrinks)."""


def _pair(name: str, measure: str, rest: float, full: float) -> tuple[ControlSpec, ControlSpec]:
    """The subject's left and right control of a measure taken on both sides."""
    return (ControlSpec(f"{name}Left", f"{measure}_left", rest, full),
            ControlSpec(f"{name}Right", f"{measure}_right", rest, full))


CONTROLS: tuple[ControlSpec, ...] = (
    *_pair("eyeBlink", "lid_gap", 50, 1),
    *_pair("eyeLookDown", "gaze_up", 50, 1),
    *_pair("eyeLookIn", "gaze_in", 50, 99),
    *_pair("eyeLookOut", "gaze_in", 50, 1),
    *_pair("eyeLookUp", "gaze_up", 50, 99),
    *_pair("eyeSquint", "lower_lid", 50, 99),
    *_pair("eyeWide", "lid_gap", 50, 99),
    ControlSpec("jawForward", "jaw_forward", 50, 99),
    ControlSpec("jawLeft", "jaw_shift", 50, 99),
    ControlSpec("jawRight", "jaw_shift", 50, 1),
    ControlSpec("jawOpen", "jaw", 5, 99),
    ControlSpec("mouthClose", "lip_gap_per_jaw", 50, 2),
    ControlSpec("mouthFunnel", "opening_roundness", 50, 99),
    ControlSpec("mouthPucker", "lips_forward", 50, 99),
    ControlSpec("mouthLeft", "mouth_shift", 50, 99),
    ControlSpec("mouthRight", "mouth_shift", 50, 1),
    *_pair("mouthSmile", "corner_up", 50, 99),
    *_pair("mouthFrown", "corner_up", 50, 1),
    *_pair("mouthDimple", "corner_back", 50, 99),
    *_pair("mouthStretch", "corner_out", 50, 99),
    ControlSpec("mouthRollLower", "lower_lip_thickness", 50, 1),
    ControlSpec("mouthRollUpper", "upper_lip_thickness", 50, 1),
    ControlSpec("mouthShrugLower", "lower_lip_raise", 50, 99),
    ControlSpec("mouthShrugUpper", "upper_lip_raise", 50, 99),
    *_pair("mouthPress", "lip_side_height", 50, 1),
    *_pair("mouthLowerDown", "lower_lip", 5, 99),
    *_pair("mouthUpperUp", "upper_lip", 5, 99),
    ControlSpec("browDownLeft", "brow_left", 50, 1),
    ControlSpec("browDownRight", "brow_right", 50, 1),
    ControlSpec("browInnerUp", "brow_inner", 50, 99),
    *_pair("browOuterUp", "brow_outer", 50, 99),
    ControlSpec("cheekPuff", "cheek_width", 50, 99),
    *_pair("cheekSquint", "cheek_up", 50, 99),
    *_pair("noseSneer", "nose_wing_up", 50, 99),
)
NAMES: tuple[str, ...] = tuple(spec.name for spec in CONTROLS)


class ControlsError(ValueError):
    """The landmarks cannot be measured; the message says what to do."""


def head_landmarks(face_model: FaceModel, expression: np.ndarray) -> np.ndarray:
    """The tracked 478 landmarks in head space, float64 [T, 478, 3], of a clip's α [T, K].

    The dataset keeps per frame α of its face model (the pose-normalised MediaPipe shape projected on the
    model), not the 3-D landmarks themselves; the model gives them back.
    """
    if face_model.mean_shape.shape[0] < NUM_LANDMARKS:
        raise ControlsError(f"the dataset's face model has {face_model.mean_shape.shape[0]} points, not "
                            f"MediaPipe's {NUM_LANDMARKS} (a synthetic dataset?): named controls need real "
                            "footage preprocessed with `dyntet preprocess`")
    return face_model.shape(np.asarray(expression, np.float64))[..., :NUM_LANDMARKS, :].astype(np.float64)


def measures(points: np.ndarray) -> dict[str, np.ndarray]:
    """Geometric measures of every frame in head space: name → float64 [T] (metres or ratios).

    Args:
        points: float [T, 478, 3] head-space landmarks (:func:`head_landmarks`).
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 3):
        raise ControlsError(f"controls need MediaPipe's {NUM_LANDMARKS} landmarks per frame in head space "
                            f"([T, {NUM_LANDMARKS}, 3]), got an array of shape {points.shape}")
    if not np.isfinite(points).all():
        raise ControlsError("the tracked landmarks contain NaN or infinity: re-run `dyntet preprocess`")
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    lip_gap = y[:, LIP_UP_IN] - y[:, LIP_DOWN_IN]
    # The jaw carries the lower lip; MediaPipe's chin point follows the jaw line's shading more than the
    # bone, so the opening is read off the lip (the chin still serves for sideways and forward shifts).
    jaw = y[:, NOSE_TIP] - y[:, LOWER_LIP_OUT]
    mouth_width = x[:, MOUTH_L] - x[:, MOUTH_R]
    if (jaw <= 1e-6).any() or (mouth_width <= 1e-6).any():
        raise ControlsError("degenerate landmarks (the lower lip above the nose tip, or the mouth corners "
                            "crossed): check the tracking with the dataset's contact sheet")
    mouth_mid_y = 0.5 * (y[:, MOUTH_R] + y[:, MOUTH_L])
    centre_y = 0.5 * (y[:, LIP_UP_IN] + y[:, LIP_DOWN_IN])
    centre_x = 0.5 * (x[:, LIP_UP_IN] + x[:, LIP_DOWN_IN])
    sides = {"left": (L_EYE_OUT, L_EYE_IN, L_LID_UP, L_LID_DOWN, L_IRIS, MOUTH_L, L_LIP_UP, L_LIP_DOWN,
                      L_BROW_OUT, L_CHEEK, L_NOSE_WING, +1.0),
             "right": (R_EYE_OUT, R_EYE_IN, R_LID_UP, R_LID_DOWN, R_IRIS, MOUTH_R, R_LIP_UP, R_LIP_DOWN,
                       R_BROW_OUT, R_CHEEK, R_NOSE_WING, -1.0)}
    out = {
        "jaw": jaw,
        "jaw_forward": 0.5 * (z[:, CHIN] + z[:, LOWER_LIP_OUT]),
        "jaw_shift": x[:, CHIN] - x[:, NOSE_TIP],
        "lip_gap_per_jaw": lip_gap / jaw,
        "opening_roundness": lip_gap / mouth_width,
        "lips_forward": 0.5 * (z[:, UPPER_LIP_OUT] + z[:, LOWER_LIP_OUT]) - 0.5 * (z[:, MOUTH_L] + z[:, MOUTH_R]),
        "mouth_shift": centre_x - x[:, NOSE_TIP],
        "lower_lip_thickness": y[:, LIP_DOWN_IN] - y[:, LOWER_LIP_OUT],
        "upper_lip_thickness": y[:, UPPER_LIP_OUT] - y[:, LIP_UP_IN],
        "lower_lip_raise": y[:, LOWER_LIP_OUT] - y[:, CHIN],
        "upper_lip_raise": y[:, UPPER_LIP_OUT] - y[:, NOSE_TIP],
        "brow_inner": 0.5 * (y[:, R_BROW_IN] + y[:, L_BROW_IN]),
        "brow_left": 0.5 * (y[:, L_BROW_IN] + y[:, L_BROW_OUT]),
        "brow_right": 0.5 * (y[:, R_BROW_IN] + y[:, R_BROW_OUT]),
        "cheek_width": (x[:, L_CHEEK] - x[:, R_CHEEK]) + (z[:, L_CHEEK_LOW] + z[:, R_CHEEK_LOW]),
    }
    for side, (eye_out, eye_in, lid_up, lid_down, iris, corner, lip_up, lip_down, brow_out, cheek, wing,
               outward) in sides.items():
        eye_mid_x, eye_mid_y = 0.5 * (x[:, eye_out] + x[:, eye_in]), 0.5 * (y[:, eye_out] + y[:, eye_in])
        out[f"lid_gap_{side}"] = y[:, lid_up] - y[:, lid_down]
        out[f"lower_lid_{side}"] = y[:, lid_down] - eye_mid_y
        out[f"gaze_up_{side}"] = y[:, iris] - eye_mid_y
        out[f"gaze_in_{side}"] = -outward * (x[:, iris] - eye_mid_x)
        out[f"corner_up_{side}"] = y[:, corner] - centre_y
        out[f"corner_out_{side}"] = outward * (x[:, corner] - x[:, NOSE_TIP])
        out[f"corner_back_{side}"] = -z[:, corner]
        out[f"lip_side_height_{side}"] = y[:, lip_up] - y[:, lip_down]
        out[f"lower_lip_{side}"] = mouth_mid_y - y[:, lip_down]
        out[f"upper_lip_{side}"] = y[:, lip_up] - mouth_mid_y
        out[f"brow_outer_{side}"] = y[:, brow_out]
        out[f"cheek_up_{side}"] = y[:, cheek]
        out[f"nose_wing_up_{side}"] = y[:, wing] - y[:, NOSE_TIP]
    return out


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
