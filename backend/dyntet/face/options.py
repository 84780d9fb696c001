"""Options of a preprocessing run and the error it raises on unusable input.

``PreprocessOptions`` is what the CLI and the server construct (the server from JSON via
:meth:`PreprocessOptions.from_dict`); each sub-config lives next to the code it configures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from dyntet.face.camera_fit import CameraFitConfig
from dyntet.face.crop import CropConfig
from dyntet.face.face_model import FaceModelConfig
from dyntet.face.masks import MaskConfig
from dyntet.face.smoothing import SmoothingConfig
from dyntet.face.tracking import TrackerConfig


class PreprocessError(Exception):
    """Preprocessing cannot go on; the message says what is wrong with the input and what to do."""


_SUB_CONFIGS: dict[str, type] = {"tracker": TrackerConfig, "face_model": FaceModelConfig, "camera": CameraFitConfig,
                                 "smoothing": SmoothingConfig, "crop": CropConfig, "masks": MaskConfig}


@dataclass
class PreprocessOptions:
    """Everything that shapes a preprocessing run (the CLI exposes the first four)."""

    size: int = 512
    """Side of the square crops in pixels."""
    fps: float | Literal["keep"] = 25.0
    """Frame rate of the dataset; "keep" uses the video's own (average) rate."""
    max_seconds: float | None = None
    """Use only the first seconds of the video."""
    num_expression: int | None = None
    """K; None chooses it from the explained variance (32–64, fewer if the clip is short)."""
    min_face_px: float = 100.0
    """Smallest usable face (forehead to chin, source pixels); smaller is an error."""
    min_frames: int = 20
    """Fewest frames with a tracked face; fewer is an error."""
    locate_samples: int = 12
    """Frames sampled over the clip to find the subject."""
    contact_sheet_frames: int = 8
    """Frames shown on the contact sheet."""
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    face_model: FaceModelConfig = field(default_factory=FaceModelConfig)
    camera: CameraFitConfig = field(default_factory=CameraFitConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 64 <= self.size <= 2048:
            raise ValueError(f"size must be an integer number of pixels in 64..2048, got {self.size!r}")
        if self.fps != "keep":
            if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not 1.0 <= self.fps <= 240.0:
                raise ValueError(f"fps must be a number in 1..240 or 'keep', got {self.fps!r}")
            self.fps = float(self.fps)
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be positive, got {self.max_seconds!r}")
        if self.num_expression is not None:
            if not isinstance(self.num_expression, int) or self.num_expression < 1:
                raise ValueError(f"num_expression must be a positive integer, got {self.num_expression!r}")
            self.face_model = replace(self.face_model, num_expression=self.num_expression)
        if self.min_face_px <= 0 or self.min_frames < 2 or self.locate_samples < 1:
            raise ValueError("min_face_px must be positive, min_frames ≥ 2 and locate_samples ≥ 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PreprocessOptions":
        """Options from plain JSON-like data (what the server receives): top-level fields plus nested maps
        for the sub-configs, e.g. ``{"size": 256, "smoothing": {"cutoff_hz": 3}}``. Unknown keys are errors."""
        if not isinstance(data, dict):
            raise ValueError(f"preprocess options must be a mapping, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown preprocess option(s) {unknown}; valid: {sorted(known)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            sub = _SUB_CONFIGS.get(name)
            if sub is None:
                values[name] = value
                continue
            if not isinstance(value, dict):
                raise ValueError(f"preprocess option {name!r} must be a mapping of {sub.__name__} fields")
            sub_fields = {f.name for f in fields(sub)}
            bad = sorted(set(value) - sub_fields)
            if bad:
                raise ValueError(f"unknown {name} option(s) {bad}; valid: {sorted(sub_fields)}")
            values[name] = sub(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
        return cls(**values)

    def track_key(self) -> dict[str, Any]:
        """The options the tracking cache depends on."""
        return {"fps": self.fps, "max_seconds": self.max_seconds, "tracker": asdict(self.tracker),
                "locate_samples": self.locate_samples}

    def fit_key(self) -> dict[str, Any]:
        """The options everything after tracking depends on."""
        out = asdict(self)
        for key in ("fps", "max_seconds", "tracker", "locate_samples"):
            out.pop(key)
        return out
