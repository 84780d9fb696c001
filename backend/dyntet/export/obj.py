"""Sequence → Wavefront OBJ, one file per frame, sharing one MTL and its textures.

For tools that read mesh sequences as numbered OBJ files (Houdini, Blender's "Stop-motion OBJ", DCC
caches). OBJ has no transforms, so the head pose is baked into the positions and normals by default.
UVs come straight from the sequence (OBJ's ``vt`` origin is bottom-left, like ours); face corners index
vertex, UV and normal separately (``f v/vt/vn``), so seams need no splitting.

Materials: ``map_Kd`` is the base colour; roughness and metalness use the PBR extension of MTL
(``Pr``/``map_Pr``, ``Pm``/``map_Pm``, read by Blender's importer among others) with the ORM texture
split into single-channel images; occlusion is written as ``occlusion.png`` for reference, since MTL has
no occlusion map.

Layout::

    OUT/
      frame_000000.obj …   one per frame: "mtllib head.mtl", v / vt / vn / f
      head.mtl
      textures/base_color.png, roughness.png, metallic.png, occlusion.png
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dyntet import __version__
from dyntet.export.mesh import vertex_normals
from dyntet.formats.sequence import Sequence
from dyntet.progress import Progress, ProgressFn

MTL_NAME = "head.mtl"
MATERIAL = "DynTetHead"


@dataclass
class ObjConfig:
    """What goes into the OBJ sequence."""

    apply_head_pose: bool = True
    """Bake the head pose into the positions (OBJ cannot store transforms)."""
    normals: bool = True
    """Write smooth vertex normals (``vn``); without them importers shade flat."""
    textures: bool = True
    """Write the texture images and reference them from the MTL."""
    frame_pattern: str = "frame_{:06d}.obj"
    """File name of frame t (``str.format`` with t)."""
    decimals: int = 6
    """Digits after the point for positions (6 = micrometres) and normals."""

    def __post_init__(self) -> None:
        if not 1 <= self.decimals <= 9:
            raise ValueError(f"decimals must be in 1..9, got {self.decimals}")
        if self.frame_pattern.format(0) == self.frame_pattern.format(1):
            raise ValueError(f"frame_pattern {self.frame_pattern!r} must contain a field for the frame number")


def write_obj_sequence(folder: str | os.PathLike, seq: Sequence, config: ObjConfig | None = None,
                       progress: ProgressFn | None = None) -> list[Path]:
    """Write one OBJ per frame plus the MTL and textures into ``folder`` (created; must be new or empty).

    Files are written into a temporary folder beside ``folder`` and moved into place at the end.

    Returns:
        The OBJ paths, in frame order.
    """
    cfg = config or ObjConfig()
    seq.validate(check_values=False)
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(f"{folder} exists and is not an empty folder; choose a new output folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        _write_material(tmp, seq, cfg)
        uv_lines = _format_rows("vt", seq.uv, 6)
        face_lines = _face_lines(seq, cfg.normals)
        header = (f"# dyntet {__version__} sequence frame\nmtllib {MTL_NAME}\no {MATERIAL}\n").encode()
        names = []
        for t in range(seq.num_frames):
            positions = np.asarray(seq.vertices[t], dtype=np.float64)
            if not np.isfinite(positions).all():
                raise ValueError(f"frame {t} of the sequence has NaN or infinite vertex positions")
            normals = vertex_normals(positions, seq.faces).astype(np.float64) if cfg.normals else None
            if cfg.apply_head_pose:
                pose = seq.head_pose[t].astype(np.float64)
                positions = positions @ pose[:3, :3].T + pose[:3, 3]
                normals = normals @ pose[:3, :3].T if normals is not None else None
            name = cfg.frame_pattern.format(t)
            with open(tmp / name, "wb") as f:
                f.write(header)
                f.write(f"# frame {t} of {seq.num_frames}, time {t / seq.fps:.6f} s\n".encode())
                f.write(_format_rows("v", positions, cfg.decimals))
                f.write(uv_lines)
                if normals is not None:
                    f.write(_format_rows("vn", normals, cfg.decimals))
                f.write(f"usemtl {MATERIAL}\ns 1\n".encode())
                f.write(face_lines)
            names.append(name)
            if progress is not None:
                progress(Progress(stage="obj", step=t + 1, total=seq.num_frames, message=name))
        if folder.exists():
            folder.rmdir()  # empty, checked above
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [folder / name for name in names]


def _format_rows(tag: str, rows: np.ndarray, decimals: int) -> bytes:
    """``tag x y (z)`` lines for a float [N, C] array, formatted in one C-level pass."""
    rows = np.asarray(rows, dtype=np.float64)
    line = tag + (f" %.{decimals}f" * rows.shape[1]) + "\n"
    return ((line * len(rows)) % tuple(rows.ravel())).encode()


def _face_lines(seq: Sequence, normals: bool) -> bytes:
    """``f v/vt/vn`` lines (1-based) shared by every frame."""
    v = seq.faces.astype(np.int64) + 1
    vt = seq.uv_faces.astype(np.int64) + 1
    if normals:
        corners = np.stack([v, vt, v], -1).reshape(len(v), -1)
        line = "f" + " %d/%d/%d" * 3 + "\n"
    else:
        corners = np.stack([v, vt], -1).reshape(len(v), -1)
        line = "f" + " %d/%d" * 3 + "\n"
    return ((line * len(corners)) % tuple(corners.ravel().tolist())).encode()


def _write_material(folder: Path, seq: Sequence, cfg: ObjConfig) -> None:
    """Write ``head.mtl`` and the texture images it names."""
    lines = [f"# dyntet {__version__}: PBR via the MTL extension (Pr/Pm); occlusion in textures/occlusion.png",
             f"newmtl {MATERIAL}", "Ka 0 0 0", "Ks 0 0 0", "illum 2"]
    if cfg.textures and (seq.base_color is not None or seq.orm is not None):
        (folder / "textures").mkdir()
    if cfg.textures and seq.base_color is not None:
        Image.fromarray(np.ascontiguousarray(seq.base_color)).save(folder / "textures" / "base_color.png")
        lines += ["Kd 1 1 1", "map_Kd textures/base_color.png"]
    else:
        lines.append("Kd 0.8 0.62 0.55")
    if cfg.textures and seq.orm is not None:
        for channel, name in ((0, "occlusion"), (1, "roughness"), (2, "metallic")):
            Image.fromarray(np.ascontiguousarray(seq.orm[..., channel])).save(folder / "textures" / f"{name}.png")
        lines += ["Pr 1", "map_Pr textures/roughness.png", "Pm 1", "map_Pm textures/metallic.png"]
    else:
        lines += ["Pr 0.6", "Pm 0"]
    (folder / MTL_NAME).write_text("\n".join(lines) + "\n")
