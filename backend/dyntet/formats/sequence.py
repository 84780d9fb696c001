"""Sequence folders: the animated head handed to Blender and to the exporters.

One topology for every frame (the point of DynTet), so a sequence is faces once plus a vertex array per
frame, a rigid head pose per frame, UVs and baked textures. ``docs/dataset-format.md`` ("Sequence
folder") documents the files. Reading is :func:`dyntet_formats.sequence.read_sequence`, the numpy-only
reader the Blender add-on uses too; this module adds the writer and loads the textures and light.

Writes are atomic: everything goes into a hidden temporary folder beside the destination, the manifest
is written last, then the folder is renamed into place, so an interrupted ``generate`` never leaves a
folder that looks complete. Reads never unpickle (``allow_pickle=False``) and check every shape and
dtype against the manifest, saying which file is wrong.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dyntet.formats.atomic import replaceable_folder
from dyntet.formats.hdr import HdrError, read_hdr, write_hdr
from dyntet_formats import sequence as shared
from dyntet_formats.sequence import BlendShapeRig, SequenceFormatError
from dyntet_formats.wav import WavFormatError, describe_wav, wav_bytes

__all__ = ["BlendShapeRig", "Sequence", "SequenceFormatError", "read_sequence", "wav_bytes", "writable",
           "write_sequence"]

FORMAT = "dyntet-sequence"
VERSION = 1

MANIFEST = "manifest.json"
FACES = "faces.npy"
VERTICES = "vertices.npy"
HEAD_POSE = "head_pose.npy"
UV = "uv.npy"
UV_FACES = "uv_faces.npy"
BASE_COLOR = "textures/base_color.png"
ORM = "textures/orm.png"
ENVIRONMENT = "environment.hdr"
AUDIO = "audio.wav"
RIG = "rig.npz"

_RIGID_TOLERANCE = 1e-3


@dataclass
class Sequence:
    """An animated head: one triangle topology, vertices per frame, head pose per frame, appearance.

    Spaces and axes as in ``docs/architecture.md``: vertices are in head space (metres, +Y up, +Z out
    of the face); ``head_pose[t]`` places the head in the scene (the head space of the driver's mean pose).
    """

    faces: np.ndarray
    """int32 [F, 3]: vertex indices, counter-clockwise seen from outside; the same for every frame."""
    vertices: np.ndarray
    """float32 [T, V, 3]: per-frame vertex positions, head space, metres."""
    head_pose: np.ndarray
    """float32 [T, 4, 4]: rigid head-to-scene transform per frame (last row 0, 0, 0, 1)."""
    fps: float
    """Frames per second (> 0)."""
    uv: np.ndarray
    """float32 [U, 2]: texture coordinates, origin bottom-left (Blender / OBJ convention), in [0, 1]."""
    uv_faces: np.ndarray
    """int32 [F, 3]: per-corner indices into ``uv``; UV seams split corners, never vertices."""
    base_color: np.ndarray | None = None
    """uint8 [H, W, 3]: sRGB albedo texture, row 0 = top of the image (v = 1)."""
    orm: np.ndarray | None = None
    """uint8 [H, W, 3]: linear packed occlusion (R), roughness (G), metalness (B); glTF's packing."""
    environment: np.ndarray | None = None
    """float32 [He, 2·He, 3]: equirectangular linear radiance of the learned light."""
    audio: bytes | Path | None = None
    """The driver's audio as WAV bytes or the path of a ``.wav`` file (16 kHz mono, aligned with frame 0)."""
    camera: dict[str, Any] | None = None
    """Optional camera for viewing: ``intrinsics`` [fx, fy, cx, cy], ``size``, ``camera_to_scene`` 4×4 list."""
    source: dict[str, Any] = field(default_factory=dict)
    """Provenance (run folder, driver, options); JSON-serialisable."""
    rig: BlendShapeRig | None = None
    """Optional compressed blend-shape rig of ``vertices`` (stored in ``rig.npz``)."""

    @property
    def num_frames(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[1])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def validate(self, check_values: bool = True) -> None:
        """Raise :class:`SequenceFormatError` unless every field has the documented dtype and shape.

        Args:
            check_values: also check index ranges, finiteness of vertices and rigidity of head poses
                (one pass over the vertex array; cheap for faces and poses).
        """
        _check_array("faces", self.faces, np.int32, (None, 3))
        _check_array("vertices", self.vertices, np.float32, (None, None, 3))
        t, v = self.vertices.shape[:2]
        if t < 1 or v < 3 or self.num_faces < 1:
            raise SequenceFormatError(
                f"a sequence needs at least 1 frame, 3 vertices and 1 face; got T={t}, V={v}, F={self.num_faces}")
        _check_array("head_pose", self.head_pose, np.float32, (t, 4, 4))
        _check_array("uv", self.uv, np.float32, (None, 2))
        _check_array("uv_faces", self.uv_faces, np.int32, (self.num_faces, 3))
        if not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and self.fps > 0):
            raise SequenceFormatError(f"fps must be a positive finite number, got {self.fps!r}")
        for name in ("base_color", "orm"):
            image = getattr(self, name)
            if image is not None:
                _check_array(name, image, np.uint8, (None, None, 3))
                if image.shape[0] < 1 or image.shape[1] < 1:
                    raise SequenceFormatError(f"{name} texture is empty: shape {image.shape}")
        if self.environment is not None:
            _check_array("environment", self.environment, np.float32, (None, None, 3))
            h, w = self.environment.shape[:2]
            if h < 1 or w != 2 * h:
                raise SequenceFormatError(
                    f"environment must be equirectangular [H, 2H, 3], got shape {self.environment.shape}")
        if self.audio is not None and not isinstance(self.audio, (bytes, bytearray, Path)):
            raise SequenceFormatError(f"audio must be WAV bytes or a Path, got {type(self.audio).__name__}")
        for name in ("camera", "source"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise SequenceFormatError(f"{name} must be a dict, got {type(value).__name__}")
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise SequenceFormatError(f"{name} must be JSON-serialisable: {exc}") from None
        if self.rig is not None:
            _check_rig(self.rig, t, v)
        if check_values:
            _check_values(self)


def write_sequence(path: str | os.PathLike, seq: Sequence, overwrite: bool = True) -> Path:
    """Write ``seq`` as a sequence folder at ``path``, atomically.

    Args:
        path: destination folder.
        seq: the sequence; validated first (values included).
        overwrite: replace an existing *sequence folder* at ``path``. Anything else found there
            (a file, a folder with other contents) is never deleted: that raises ``FileExistsError``.

    Returns:
        ``path`` as a :class:`Path`.
    """
    seq.validate(check_values=True)
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace a sequence folder")
        if not _is_replaceable(path):
            raise FileExistsError(
                f"{path} exists and is not a sequence folder (no {MANIFEST} with format {FORMAT!r}); "
                "refusing to replace it — choose another output path")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_sibling(path, "tmp")
    try:
        _write_contents(tmp, seq)
        if path.exists():
            old = _fresh_sibling(path, "old")
            os.replace(path, old / "seq")  # moved aside first so the destination is never half-written
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _fresh_sibling(path: Path, tag: str) -> Path:
    """A new hidden folder beside ``path`` (same file system, so renames are atomic; honours the umask)."""
    folder = path.parent / f".{path.name}.{tag}-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    return folder


def writable(path: str | os.PathLike) -> bool:
    """True when :func:`write_sequence` may write at ``path``: nothing there yet, an empty folder, or a
    sequence folder it would replace. Lets a long ``generate`` refuse a bad destination before working."""
    path = Path(path)
    return not (path.exists() or path.is_symlink()) or _is_replaceable(path)


def _is_replaceable(path: Path) -> bool:
    return replaceable_folder(path, MANIFEST, FORMAT)


def _write_contents(folder: Path, seq: Sequence) -> None:
    np.save(folder / FACES, np.ascontiguousarray(seq.faces))
    np.save(folder / VERTICES, np.ascontiguousarray(seq.vertices))
    np.save(folder / HEAD_POSE, np.ascontiguousarray(seq.head_pose))
    np.save(folder / UV, np.ascontiguousarray(seq.uv))
    np.save(folder / UV_FACES, np.ascontiguousarray(seq.uv_faces))
    textures: dict[str, str] = {}
    for key, rel in (("base_color", BASE_COLOR), ("orm", ORM)):
        image = getattr(seq, key)
        if image is not None:
            (folder / rel).parent.mkdir(exist_ok=True)
            Image.fromarray(np.ascontiguousarray(image)).save(folder / rel, optimize=False)
            textures[key] = rel
    if seq.environment is not None:
        write_hdr(folder / ENVIRONMENT, seq.environment)
    audio = None
    if seq.audio is not None:
        audio = _write_audio(folder / AUDIO, seq.audio)
    rig = None
    if seq.rig is not None:
        np.savez(folder / RIG, mean=seq.rig.mean, targets=seq.rig.targets, weights=seq.rig.weights)
        rig = {"file": RIG, "num_targets": seq.rig.num_targets}
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "num_frames": seq.num_frames,
        "num_vertices": seq.num_vertices,
        "num_faces": seq.num_faces,
        "num_uvs": int(seq.uv.shape[0]),
        "fps": float(seq.fps),
        "has_audio": audio is not None,
        "audio": audio,
        "textures": textures,
        "environment": ENVIRONMENT if seq.environment is not None else None,
        "rig": rig,
        "camera": seq.camera,
        "source": seq.source,
    }
    tmp_manifest = folder / (MANIFEST + ".part")
    tmp_manifest.write_text(json.dumps(manifest, indent=2, allow_nan=False))
    os.replace(tmp_manifest, folder / MANIFEST)


def _write_audio(dest: Path, audio: bytes | bytearray | Path) -> dict[str, Any]:
    """Copy WAV audio into the folder; returns its description for the manifest."""
    if isinstance(audio, Path):
        if not audio.is_file():
            raise SequenceFormatError(f"audio file {audio} does not exist")
        shutil.copyfile(audio, dest)
    else:
        dest.write_bytes(bytes(audio))
    return _describe_wav(dest)


def _describe_wav(path: Path) -> dict[str, Any]:
    try:
        info = describe_wav(path)
    except WavFormatError as exc:
        raise SequenceFormatError(str(exc)) from None
    return {"file": AUDIO, "sample_rate": info.sample_rate, "channels": info.channels,
            "duration_s": info.duration_s}


def read_sequence(path: str | os.PathLike, mmap: bool = True) -> Sequence:
    """Read and check a sequence folder, textures and light included.

    Args:
        path: the folder written by :func:`write_sequence` (or ``dyntet generate``).
        mmap: memory-map ``vertices.npy`` (read-only) instead of loading it; large sequences then cost
            no RAM until frames are touched.

    Returns:
        The :class:`Sequence`; ``audio`` is the :class:`Path` of ``audio.wav`` when present.

    Raises:
        SequenceFormatError: missing or malformed files, with the file named.
    """
    path = Path(path)
    folder = shared.read_sequence(path, load_rig=shared.has_rig(path))
    if folder.uv is None:
        raise SequenceFormatError(f"{path} has no uv.npy / uv_faces.npy (every sequence from 'dyntet generate' has)")
    manifest = folder.manifest
    if manifest.get("has_audio") and folder.audio is None:
        raise SequenceFormatError(f"{path / AUDIO} is listed in the manifest but missing")
    seq = Sequence(
        faces=folder.faces,
        vertices=folder.vertices if mmap else np.array(folder.vertices),
        head_pose=folder.head_pose,
        fps=folder.fps,
        uv=folder.uv,
        uv_faces=folder.uv_faces,
        camera=manifest.get("camera"),
        source=manifest.get("source") or {},
        audio=folder.audio if manifest.get("has_audio") else None,
        rig=folder.rig,
    )
    for key, file in folder.textures.items():
        setattr(seq, key, _read_png(file))
    if manifest.get("environment"):
        if folder.environment is None:
            raise SequenceFormatError(f"{path / ENVIRONMENT} is listed in the manifest but missing")
        try:
            seq.environment = read_hdr(folder.environment)
        except HdrError as exc:
            raise SequenceFormatError(str(exc)) from None
    try:
        seq.validate(check_values=False)
    except SequenceFormatError as exc:
        raise SequenceFormatError(f"{path}: {exc}") from None
    return seq


def _read_png(file: Path) -> np.ndarray:
    try:
        with Image.open(file) as image:
            if image.mode not in ("RGB", "RGBA", "L", "P"):
                raise SequenceFormatError(
                    f"{file}: PNG mode {image.mode!r} is not supported; textures are 8-bit RGB")
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError) as exc:
        raise SequenceFormatError(f"{file}: not a readable image ({exc})") from None


def _check_array(name: str, array: Any, dtype: type, shape: tuple[int | None, ...]) -> None:
    if not isinstance(array, np.ndarray):
        raise SequenceFormatError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.dtype != dtype:
        raise SequenceFormatError(f"{name} must have dtype {np.dtype(dtype).name}, got {array.dtype}")
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        wanted = "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"
        raise SequenceFormatError(f"{name} must have shape {wanted}, got {list(array.shape)}")


def _check_rig(rig: BlendShapeRig, t: int, v: int) -> None:
    _check_array("rig.mean", rig.mean, np.float32, (v, 3))
    _check_array("rig.targets", rig.targets, np.float32, (None, v, 3))
    _check_array("rig.weights", rig.weights, np.float32, (t, rig.num_targets))


def _check_indices(seq: Sequence) -> None:
    for name, index, bound in (("faces", seq.faces, seq.num_vertices), ("uv_faces", seq.uv_faces, len(seq.uv))):
        if index.size and (index.min() < 0 or index.max() >= bound):
            raise SequenceFormatError(
                f"{name} index out of range: values in [{index.min()}, {index.max()}], must be in [0, {bound})")


def _check_values(seq: Sequence) -> None:
    _check_indices(seq)
    if not np.isfinite(seq.vertices).all():
        raise SequenceFormatError("vertices contain NaN or infinite values")
    if not np.isfinite(seq.uv).all():
        raise SequenceFormatError("uv contains NaN or infinite values")
    pose = seq.head_pose.astype(np.float64)
    if not np.isfinite(pose).all():
        raise SequenceFormatError("head_pose contains NaN or infinite values")
    if np.abs(pose[:, 3] - [0, 0, 0, 1]).max() > _RIGID_TOLERANCE:
        raise SequenceFormatError("head_pose last rows must be [0, 0, 0, 1] (rigid transforms)")
    rot = pose[:, :3, :3]
    orth = np.abs(rot.transpose(0, 2, 1) @ rot - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(rot)
    bad = np.flatnonzero((orth > _RIGID_TOLERANCE) | (det <= 0))
    if bad.size:
        raise SequenceFormatError(
            f"head_pose[{bad[0]}] is not a rotation + translation (frames {bad[:5].tolist()}... "
            f"{bad.size} in all): scale or shear would distort the head")
    if seq.rig is not None and not all(np.isfinite(a).all() for a in (seq.rig.mean, seq.rig.targets,
                                                                          seq.rig.weights)):
        raise SequenceFormatError("rig arrays contain NaN or infinite values")
