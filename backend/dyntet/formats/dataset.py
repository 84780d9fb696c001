"""Dataset folders: the contract between preprocessing (or the synthetic subject) and training.

The layout is documented in ``docs/dataset-format.md``. Writers add frames and arrays in any order;
``DatasetWriter.finish`` writes ``manifest.json`` last, so an interrupted run never looks complete.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from dyntet.formats.atomic import write_bytes_atomic, write_json_atomic
from dyntet_formats.errors import FormatError
from dyntet_formats.files import load_npz, read_json_object

FORMAT = "dyntet-dataset"
VERSION = 1
MASK_BACKGROUND, MASK_TORSO, MASK_HEAD = 0, 1, 2


class DatasetError(FormatError):
    """A dataset folder is missing, incomplete or inconsistent; the message says what to do."""


REPAIR = "re-run `dyntet preprocess` on the source video with --force to rebuild the dataset"


@dataclass
class FaceModel:
    """Linear face model in head space (metres): ``shape(α) = mean_shape + Σ_k α_k expression_basis[k]``."""

    mean_shape: np.ndarray        # float32 [P, 3]
    expression_basis: np.ndarray  # float32 [K, P, 3]
    triangles: np.ndarray         # int32 [F, 3], counter-clockwise from outside

    def __post_init__(self) -> None:
        self.mean_shape = np.asarray(self.mean_shape, np.float32)
        self.expression_basis = np.asarray(self.expression_basis, np.float32)
        self.triangles = np.asarray(self.triangles, np.int32)
        p = self.mean_shape.shape[0]
        if self.mean_shape.shape != (p, 3):
            raise DatasetError(f"face model mean_shape must be [P, 3], got {self.mean_shape.shape}")
        if self.expression_basis.ndim != 3 or self.expression_basis.shape[1:] != (p, 3):
            raise DatasetError(f"face model expression_basis must be [K, {p}, 3], got {self.expression_basis.shape}")
        if self.triangles.ndim != 2 or self.triangles.shape[1] != 3 or (
                self.triangles.size and (self.triangles.min() < 0 or self.triangles.max() >= p)):
            raise DatasetError(f"face model triangles must be [F, 3] indices below {p}")

    @property
    def num_expression(self) -> int:
        return self.expression_basis.shape[0]

    def shape(self, expression: np.ndarray) -> np.ndarray:
        """Points [..., P, 3] for expression coefficients [..., K]."""
        return self.mean_shape + np.tensordot(expression, self.expression_basis, axes=([-1], [0]))

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, mean_shape=self.mean_shape, expression_basis=self.expression_basis,
                 triangles=self.triangles)
        write_bytes_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> "FaceModel":
        data = load_npz(path, ("mean_shape", "expression_basis", "triangles"), REPAIR, DatasetError)
        return cls(data["mean_shape"], data["expression_basis"], data["triangles"])


@dataclass
class Tracking:
    """Per-frame camera and expression of a clip (one camera for the whole clip)."""

    intrinsics: np.ndarray         # float32 [4] fx, fy, cx, cy in crop pixels
    pose: np.ndarray               # float32 [N, 4, 4] head-to-camera (OpenGL camera axes)
    expression: np.ndarray         # float32 [N, K]
    frame_index: np.ndarray        # int32 [N] index in the source video
    landmarks: np.ndarray | None = None  # float32 [N, P, 2] crop pixels, optional

    def __post_init__(self) -> None:
        self.intrinsics = np.asarray(self.intrinsics, np.float32).reshape(4)
        self.pose = np.asarray(self.pose, np.float32)
        self.expression = np.asarray(self.expression, np.float32)
        self.frame_index = np.asarray(self.frame_index, np.int32)
        n = self.pose.shape[0]
        if self.pose.shape != (n, 4, 4):
            raise DatasetError(f"tracking pose must be [N, 4, 4], got {self.pose.shape}")
        if self.expression.ndim != 2 or self.expression.shape[0] != n:
            raise DatasetError(f"tracking expression must be [{n}, K], got {self.expression.shape}")
        if self.frame_index.shape != (n,):
            raise DatasetError(f"tracking frame_index must be [{n}], got {self.frame_index.shape}")
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, np.float32)

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = dict(intrinsics=self.intrinsics, pose=self.pose,
                                             expression=self.expression, frame_index=self.frame_index)
        if self.landmarks is not None:
            arrays["landmarks"] = self.landmarks
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_bytes_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> "Tracking":
        data = load_npz(path, ("intrinsics", "pose", "expression", "frame_index"), REPAIR, DatasetError)
        return cls(data["intrinsics"], data["pose"], data["expression"], data["frame_index"],
                   data.get("landmarks"))


def split_ranges(num_frames: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Train/test index ranges: the last 1/11 of the frames is test (as in the paper), at least one each."""
    if num_frames < 2:
        raise DatasetError(f"a dataset needs at least 2 frames, got {num_frames}")
    num_test = max(1, num_frames // 11)
    return (0, num_frames - num_test), (num_frames - num_test, num_frames)


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def read_png(path: Path) -> np.ndarray:
    """The pixels of a PNG of ours; a missing, cut-short or corrupt file raises :class:`DatasetError`."""
    try:
        with Image.open(path) as img:
            return np.asarray(img)
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing: {REPAIR}") from None
    except (OSError, SyntaxError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable PNG (cut short or corrupt: {exc}): {REPAIR}") from None


class DatasetWriter:
    """Writes a dataset folder piece by piece; ``finish`` validates and writes the manifest last."""

    def __init__(self, root: Path, size: int, fps: float) -> None:
        self.root = Path(root)
        self.size = int(size)
        self.fps = float(fps)
        (self.root / "frames").mkdir(parents=True, exist_ok=True)
        (self.root / "masks").mkdir(parents=True, exist_ok=True)
        manifest = self.root / "manifest.json"
        manifest.unlink(missing_ok=True)  # the folder is being (re)written: it is not complete any more

    def _check_image(self, image: np.ndarray, channels: int | None, what: str) -> None:
        expected = (self.size, self.size) + ((channels,) if channels else ())
        if image.shape != expected or image.dtype != np.uint8:
            raise DatasetError(f"{what} must be uint8 {expected}, got {image.dtype} {image.shape}")

    def write_frame(self, index: int, rgb: np.ndarray, mask: np.ndarray) -> None:
        """Frame ``index``: rgb uint8 [S, S, 3]; mask uint8 [S, S] labels (0 background, 1 torso, 2 head)."""
        self._check_image(rgb, 3, "frame")
        self._check_image(mask, None, "mask")
        write_bytes_atomic(self.root / "frames" / f"{index:06d}.png", encode_png(rgb))
        write_bytes_atomic(self.root / "masks" / f"{index:06d}.png", encode_png(mask))

    def write_background(self, rgb: np.ndarray) -> None:
        self._check_image(rgb, 3, "background")
        write_bytes_atomic(self.root / "background.png", encode_png(rgb))

    def write_audio(self, wav_bytes: bytes) -> None:
        write_bytes_atomic(self.root / "audio.wav", wav_bytes)

    def finish(self, tracking: Tracking, face_model: FaceModel, source: dict[str, Any]) -> Path:
        n = tracking.pose.shape[0]
        if tracking.expression.shape[1] != face_model.num_expression:
            raise DatasetError(f"tracking has {tracking.expression.shape[1]} expression coefficients, "
                               f"face model has {face_model.num_expression}")
        for sub in ("frames", "masks"):
            missing = [i for i in range(n) if not (self.root / sub / f"{i:06d}.png").exists()]
            if missing:
                raise DatasetError(f"{len(missing)} {sub} missing (first: {missing[0]})")
        if not (self.root / "background.png").exists():
            raise DatasetError("background.png missing")
        tracking.save(self.root / "tracking.npz")
        face_model.save(self.root / "face_model.npz")
        train, test = split_ranges(n)
        manifest = {
            "format": FORMAT, "version": VERSION, "num_frames": n, "size": self.size, "fps": self.fps,
            "train_frames": list(train), "test_frames": list(test),
            "num_expression": face_model.num_expression,
            "has_audio": (self.root / "audio.wav").exists(), "source": source,
        }
        write_json_atomic(self.root / "manifest.json", manifest)
        return self.root


def _check_manifest_fields(path: Path, manifest: dict[str, Any]) -> None:
    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    for key in ("num_frames", "size", "fps"):
        if not number(manifest.get(key)) or manifest[key] <= 0:
            raise DatasetError(f"{path}: {key!r} is {manifest.get(key)!r}, expected a positive number: {REPAIR}")
    for key in ("train_frames", "test_frames"):
        value = manifest.get(key)
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
            raise DatasetError(f"{path}: {key!r} is {value!r}, expected [start, stop]: {REPAIR}")


@dataclass
class Dataset:
    """A dataset folder opened for reading (images are read on demand)."""

    root: Path
    manifest: dict[str, Any]
    tracking: Tracking
    face_model: FaceModel
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, root: str | Path) -> "Dataset":
        root = Path(root)
        manifest_path = root / "manifest.json"
        if not root.is_dir():
            raise DatasetError(f"dataset folder {root} does not exist: run `dyntet preprocess VIDEO -o {root}`")
        if not manifest_path.exists():
            raise DatasetError(f"{root} has no manifest.json: it is not a dataset, or its preprocessing did not "
                               f"finish — run `dyntet preprocess` again")
        manifest = read_json_object(manifest_path, REPAIR, DatasetError)
        if manifest.get("format") != FORMAT:
            raise DatasetError(f"{manifest_path} is not a dyntet dataset manifest (format {manifest.get('format')!r})")
        if manifest.get("version") != VERSION:
            raise DatasetError(f"{root} has dataset format version {manifest.get('version')}, this dyntet reads "
                               f"version {VERSION}: re-run preprocessing")
        _check_manifest_fields(manifest_path, manifest)
        tracking = Tracking.load(root / "tracking.npz")
        face_model = FaceModel.load(root / "face_model.npz")
        if tracking.pose.shape[0] != manifest["num_frames"]:
            raise DatasetError(f"{root}: manifest says {manifest['num_frames']} frames, tracking has "
                               f"{tracking.pose.shape[0]}")
        return cls(root, manifest, tracking, face_model)

    @property
    def num_frames(self) -> int:
        return int(self.manifest["num_frames"])

    @property
    def size(self) -> int:
        return int(self.manifest["size"])

    @property
    def fps(self) -> float:
        return float(self.manifest["fps"])

    def split(self, name: str) -> range:
        """Frame indices of ``"train"``, ``"test"`` or ``"all"``."""
        if name == "all":
            return range(self.num_frames)
        if name not in ("train", "test"):
            raise DatasetError(f"unknown split {name!r}: use train, test or all")
        start, stop = self.manifest[f"{name}_frames"]
        return range(start, stop)

    def frame(self, index: int) -> np.ndarray:
        """uint8 [S, S, 3] RGB."""
        return read_png(self.root / "frames" / f"{index:06d}.png")[..., :3]

    def mask(self, index: int) -> np.ndarray:
        """uint8 [S, S] labels."""
        return read_png(self.root / "masks" / f"{index:06d}.png")

    def background(self) -> np.ndarray:
        """uint8 [S, S, 3] RGB."""
        return read_png(self.root / "background.png")[..., :3]

    @property
    def audio_path(self) -> Path | None:
        path = self.root / "audio.wav"
        return path if path.exists() else None
