"""Read a DynTet sequence folder (``docs/dataset-format.md`` "Sequence folder"): numpy only.

The one reader of the format: the Blender add-on uses it (it must not import ``dyntet``, which needs
torch) and so do the backend's exporters, through :mod:`dyntet.formats.sequence`. Validating the folder
before any Blender data is created is what keeps a bad folder from leaving a half-imported object.
Arrays load with ``allow_pickle=False``; the per-frame vertices are memory-mapped so a 1000-frame,
30k-vertex sequence (≈360 MB) is read frame by frame, not all at once.

Optional blend-shape (PCA) rig for ``rig="pca"`` imports: ``rig.npz`` (listed by the manifest's
``rig`` object), holding ``mean`` float32 [V, 3], ``targets`` float32 [K, V, 3] and ``weights`` float32
[T, K], so that frame t ≈ mean + Σ_k weights[t, k] · targets[k] (written by ``dyntet generate``).

File names are fixed by the format; paths found in the manifest are never followed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dyntet_formats.errors import FormatError

FORMAT = "dyntet-sequence"
SUPPORTED_VERSION = 1

TEXTURE_FILES = {"base_color": "textures/base_color.png", "orm": "textures/orm.png"}
"""Where each texture role lives inside the folder."""
RIG_FILE = "rig.npz"


class SequenceFormatError(FormatError):
    """The folder is not a readable DynTet sequence; the message says what was expected and found."""


@dataclass(frozen=True)
class BlendShapeRig:
    """A linear blend-shape rig of a sequence (head space, metres)."""

    mean: np.ndarray
    """float32 [V, 3]: rest shape."""
    targets: np.ndarray
    """float32 [K, V, 3]: offsets of each blend shape at weight 1."""
    weights: np.ndarray
    """float32 [T, K]: weight of each blend shape per frame."""

    @property
    def num_targets(self) -> int:
        return int(self.targets.shape[0])

    def reconstruct(self, frames: slice | np.ndarray | None = None) -> np.ndarray:
        """float32 [T', V, 3] vertices of the chosen frames (all frames when ``frames`` is None)."""
        w = self.weights if frames is None else self.weights[frames]
        flat = self.targets.reshape(self.num_targets, -1)
        out = (w @ flat).reshape(len(w), *self.mean.shape) + self.mean[None]
        return out.astype(np.float32, copy=False)


@dataclass(frozen=True)
class Sequence:
    """A validated sequence folder. Frame ``t`` of this object is frame ``first_frame + t`` of the folder."""

    root: Path
    manifest: dict[str, Any]
    fps: float
    faces: np.ndarray
    """int32 [F, 3]: one topology for every frame, counter-clockwise seen from outside."""
    vertices: np.ndarray
    """float32-compatible [T, V, 3], head space (+Y up), metres; possibly a read-only memory map."""
    head_pose: np.ndarray
    """float32 [T, 4, 4]: head-to-scene rigid transform per frame, head space."""
    uv: np.ndarray | None = None
    """float32 [U, 2]: UV coordinates, origin bottom-left."""
    uv_faces: np.ndarray | None = None
    """int32 [F, 3]: per-corner indices into ``uv``."""
    textures: dict[str, Path] = field(default_factory=dict)
    """Existing texture files by role: ``base_color`` (sRGB), ``orm`` (linear R occlusion, G roughness, B metalness)."""
    environment: Path | None = None
    """Equirectangular Radiance HDR of the learned light."""
    audio: Path | None = None
    """The driver's audio, aligned with frame 0 of the folder."""
    rig: BlendShapeRig | None = None
    first_frame: int = 0
    """Index in the folder of this object's frame 0 (a frame range was selected)."""

    @property
    def num_frames(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[1])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def frame(self, t: int) -> np.ndarray:
        """float32 [V, 3] contiguous copy of frame ``t`` (head space)."""
        if not 0 <= t < self.num_frames:
            raise IndexError(f"frame {t} is outside 0..{self.num_frames - 1}")
        return np.ascontiguousarray(self.vertices[t], dtype=np.float32)


def read_sequence(
    root: str | Path,
    *,
    frames: tuple[int, int] | None = None,
    load_rig: bool = False,
) -> Sequence:
    """Read and validate a sequence folder.

    Args:
        root: the folder holding ``manifest.json``.
        frames: optional half-open range ``(a, b)`` of folder frames to keep; ``None`` keeps all.
        load_rig: also read the blend-shape rig (``rig.npz``); raises when it is missing or inconsistent.

    Raises:
        SequenceFormatError: anything missing, of the wrong dtype or shape, or inconsistent.
    """
    root = Path(root)
    if not root.is_dir():
        raise SequenceFormatError(f"{root} is not a folder; pick the sequence folder that holds manifest.json")
    manifest = _read_manifest(root)

    faces = _load(root, "faces.npy")
    _check_int(faces, "faces.npy", ndim=2, trailing=(3,))
    vertices = _load(root, "vertices.npy", mmap=True)
    _check_float(vertices, "vertices.npy", ndim=3, trailing=(3,))
    head_pose = _load(root, "head_pose.npy")
    _check_float(head_pose, "head_pose.npy", ndim=3, trailing=(4, 4))

    num_frames, num_vertices = int(vertices.shape[0]), int(vertices.shape[1])
    _expect_equal(manifest, "num_frames", num_frames, "vertices.npy frames")
    _expect_equal(manifest, "num_vertices", num_vertices, "vertices.npy vertices")
    _expect_equal(manifest, "num_faces", int(faces.shape[0]), "faces.npy faces")
    if num_frames < 1 or num_vertices < 3 or faces.shape[0] < 1:
        raise SequenceFormatError(
            f"the sequence is empty: {num_frames} frames, {num_vertices} vertices, {faces.shape[0]} faces"
        )
    if head_pose.shape[0] != num_frames:
        raise SequenceFormatError(
            f"head_pose.npy has {head_pose.shape[0]} poses but vertices.npy has {num_frames} frames; "
            "the folder was written by two different runs"
        )
    faces = faces.astype(np.int32, copy=False)
    _check_indices(faces, num_vertices, "faces.npy", "vertices")
    head_pose = np.asarray(head_pose, dtype=np.float32)
    if not np.isfinite(head_pose).all():
        raise SequenceFormatError("head_pose.npy holds NaN or infinite values")

    uv, uv_faces = _read_uv(root, int(faces.shape[0]))
    textures = _texture_paths(root, manifest)
    environment = _optional_file(root, "environment.hdr")
    audio = _optional_file(root, "audio.wav")
    rig = _read_rig(root, manifest, num_frames, num_vertices) if load_rig else None

    first = 0
    if frames is not None:
        first, stop = _check_range(frames, num_frames)
        vertices = vertices[first:stop]
        head_pose = head_pose[first:stop]
        if rig is not None:
            rig = BlendShapeRig(rig.mean, rig.targets, rig.weights[first:stop])

    return Sequence(
        root=root,
        manifest=manifest,
        fps=_fps(manifest),
        faces=faces,
        vertices=vertices,
        head_pose=head_pose,
        uv=uv,
        uv_faces=uv_faces,
        textures=textures,
        environment=environment,
        audio=audio,
        rig=rig,
        first_frame=first,
    )


def has_rig(root: str | Path) -> bool:
    """Whether the folder holds a blend-shape rig (``rig.npz``)."""
    return (Path(root) / RIG_FILE).is_file()


# --------------------------------------------------------------------------------------------------------


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / "manifest.json"
    if not path.is_file():
        raise SequenceFormatError(
            f"{root} has no manifest.json: it is not a sequence folder, or `dyntet generate` did not finish"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SequenceFormatError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise SequenceFormatError(f"{path} must hold a JSON object, found {type(manifest).__name__}")
    if manifest.get("format") != FORMAT:
        raise SequenceFormatError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SequenceFormatError(f"{path} has version {version!r}, expected a positive integer")
    if version > SUPPORTED_VERSION:
        raise SequenceFormatError(
            f"{path} is sequence format version {version}; this build reads up to {SUPPORTED_VERSION}: "
            "update DynTet (add-on and backend) to read it"
        )
    return manifest


def _fps(manifest: dict[str, Any]) -> float:
    fps = manifest.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or not 0 < fps <= 1000:
        raise SequenceFormatError(f"manifest.json fps is {fps!r}, expected a number in (0, 1000]")
    return float(fps)


def _load(root: Path, name: str, *, mmap: bool = False) -> np.ndarray:
    path = root / name
    if not path.is_file():
        raise SequenceFormatError(f"{root} is missing {name}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise SequenceFormatError(f"{path} is not a readable .npy array without pickles: {exc}") from exc


def _describe(array: np.ndarray) -> str:
    return f"{array.dtype} {list(array.shape)}"


def _check_shape(array: np.ndarray, name: str, ndim: int, trailing: tuple[int, ...], kind: str) -> None:
    if array.ndim != ndim or tuple(array.shape[ndim - len(trailing):]) != trailing:
        dims = ", ".join(["N"] * (ndim - len(trailing)) + [str(t) for t in trailing])
        raise SequenceFormatError(f"{name} must be {kind} [{dims}], found {_describe(array)}")


def _check_float(array: np.ndarray, name: str, *, ndim: int, trailing: tuple[int, ...]) -> None:
    if not np.issubdtype(array.dtype, np.floating):
        raise SequenceFormatError(f"{name} must hold floats (float32), found {_describe(array)}")
    _check_shape(array, name, ndim, trailing, "float32")


def _check_int(array: np.ndarray, name: str, *, ndim: int, trailing: tuple[int, ...]) -> None:
    if not np.issubdtype(array.dtype, np.integer):
        raise SequenceFormatError(f"{name} must hold integers (int32), found {_describe(array)}")
    _check_shape(array, name, ndim, trailing, "int32")


def _check_indices(indices: np.ndarray, count: int, name: str, what: str) -> None:
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= count):
        raise SequenceFormatError(
            f"{name} indexes {what} {int(indices.min())}..{int(indices.max())}, but there are only {count} {what}"
        )


def _expect_equal(manifest: dict[str, Any], key: str, actual: int, where: str) -> None:
    if key in manifest and manifest[key] != actual:
        raise SequenceFormatError(f"manifest.json says {key} = {manifest[key]!r} but {where} = {actual}")


def _check_range(frames: tuple[int, int], num_frames: int) -> tuple[int, int]:
    try:
        first, stop = (int(frames[0]), int(frames[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise SequenceFormatError(f"frames must be a pair (first, stop), got {frames!r}") from exc
    if not 0 <= first < stop <= num_frames:
        raise SequenceFormatError(
            f"frame range {first}..{stop} (half-open) does not fit the sequence's {num_frames} frames"
        )
    return first, stop


def _read_uv(root: Path, num_faces: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    has_uv, has_faces = (root / "uv.npy").is_file(), (root / "uv_faces.npy").is_file()
    if not has_uv and not has_faces:
        return None, None
    if has_uv != has_faces:
        raise SequenceFormatError("uv.npy and uv_faces.npy come together; one of them is missing")
    uv = _load(root, "uv.npy")
    _check_float(uv, "uv.npy", ndim=2, trailing=(2,))
    uv_faces = _load(root, "uv_faces.npy")
    _check_int(uv_faces, "uv_faces.npy", ndim=2, trailing=(3,))
    if uv_faces.shape[0] != num_faces:
        raise SequenceFormatError(f"uv_faces.npy has {uv_faces.shape[0]} faces but faces.npy has {num_faces}")
    uv_faces = uv_faces.astype(np.int32, copy=False)
    _check_indices(uv_faces, int(uv.shape[0]), "uv_faces.npy", "UV coordinates")
    return uv.astype(np.float32, copy=False), uv_faces


def _texture_paths(root: Path, manifest: dict[str, Any]) -> dict[str, Path]:
    named = manifest.get("textures") or {}
    if not isinstance(named, dict):
        raise SequenceFormatError(f"manifest.json textures must be an object, found {type(named).__name__}")
    found: dict[str, Path] = {}
    for role, relative in TEXTURE_FILES.items():
        path = root / relative
        if path.is_file():
            found[role] = path
        elif role in named:
            raise SequenceFormatError(f"manifest.json lists texture {role!r} but {relative} is missing")
    return found


def _optional_file(root: Path, name: str) -> Path | None:
    path = root / name
    return path if path.is_file() else None


def _read_rig(root: Path, manifest: dict[str, Any], num_frames: int, num_vertices: int) -> BlendShapeRig:
    path = root / RIG_FILE
    if not path.is_file():
        raise SequenceFormatError(
            f"{root} has no blend-shape rig ({RIG_FILE}): it was written before `dyntet generate` made one. "
            "Generate the sequence again (every generate writes the rig), or import Per-Frame Shape Keys"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files if name in ("mean", "targets", "weights")}
    except (OSError, ValueError, EOFError) as exc:
        raise SequenceFormatError(f"{path} is not a readable .npz archive without pickles: {exc}") from exc
    missing = {"mean", "targets", "weights"} - set(arrays)
    if missing:
        raise SequenceFormatError(f"{path} lacks arrays {sorted(missing)}")
    mean, targets, weights = arrays["mean"], arrays["targets"], arrays["weights"]
    _check_float(mean, "rig.npz mean", ndim=2, trailing=(num_vertices, 3))
    _check_float(targets, "rig.npz targets", ndim=3, trailing=(num_vertices, 3))
    _check_float(weights, "rig.npz weights", ndim=2, trailing=(targets.shape[0],))
    if weights.shape[0] != num_frames:
        raise SequenceFormatError(f"rig.npz weights has {weights.shape[0]} frames, vertices.npy has {num_frames}")
    if targets.shape[0] < 1:
        raise SequenceFormatError("rig.npz holds no blend shapes")
    described = manifest.get("rig")
    if isinstance(described, dict) and described.get("num_targets", targets.shape[0]) != targets.shape[0]:
        raise SequenceFormatError(
            f"manifest.json says the rig has {described.get('num_targets')} targets, rig.npz has {targets.shape[0]}"
        )
    arrays = [np.asarray(a, dtype=np.float32) for a in (mean, targets, weights)]
    if not all(np.isfinite(a).all() for a in arrays):
        raise SequenceFormatError("the blend-shape rig holds NaN or infinite values")
    return BlendShapeRig(*arrays)


def normalise_rig(rig: BlendShapeRig) -> BlendShapeRig:
    """Rescale each blend shape so its weights span at most [-1, 1], leaving every frame unchanged.

    Why: Blender clamps shape-key values to the slider range (at most ±10) and artists expect sliders
    near ±1; PCA weights can be anything. ``targets[k] · weights[t, k]`` is preserved.
    """
    peak = np.abs(rig.weights).max(axis=0) if rig.weights.size else np.ones(rig.num_targets, np.float32)
    peak = np.where(peak > 0, peak, 1.0).astype(np.float32)
    return BlendShapeRig(rig.mean, rig.targets * peak[:, None, None], rig.weights / peak[None, :])
