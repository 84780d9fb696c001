"""A bake folder: the true DynTet meshes of edited control curves (``bake.exact``, ``docs/protocol.md``).

```
BAKE/
  vertices.npy  float32 [N, V, 3]  head space, metres: the meshes of the baked rows, in order
  bake.json     {"format": "dyntet-bake", "version": 1, "num_frames": N, "num_vertices": V, "names": [...],
                 "start", "stop", "run"}   written last
```

Why a folder and not a sequence: a bake only replaces the corrective layer of frames already imported,
so it needs no topology, UVs, textures or head motion; a folder lets ``fetch.frames`` serve the vertices.
The manifest is removed before new vertices are written and written after them, so a reader never pairs
an old manifest with new vertices.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dyntet.formats.atomic import atomic_path, replaceable_folder, write_json_atomic

FORMAT = "dyntet-bake"
VERSION = 1
MANIFEST = "bake.json"
VERTICES = "vertices.npy"


def bake_writable(path: str | os.PathLike) -> bool:
    """True when :func:`write_bake` may write at ``path``: nothing there, an empty folder, or a bake folder."""
    path = Path(path)
    return not (path.exists() or path.is_symlink()) or replaceable_folder(path, MANIFEST, FORMAT)


def write_bake(path: str | os.PathLike, vertices: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write ``vertices`` float32 [N, V, 3] and the manifest (``meta`` adds ``names``, ``start``, …).

    Raises:
        FileExistsError: ``path`` holds something other than a bake folder (it is never replaced).
        ValueError: ``vertices`` is not a finite float32 [N, V, 3] array.
    """
    path = Path(path)
    vertices = np.ascontiguousarray(vertices)
    if vertices.dtype != np.float32 or vertices.ndim != 3 or vertices.shape[2] != 3 or not len(vertices):
        raise ValueError(f"baked vertices must be float32 [N, V, 3] with N ≥ 1, got {vertices.dtype} "
                         f"{list(vertices.shape)}")
    if not np.isfinite(vertices).all():
        raise ValueError("baked vertices hold NaN or infinite values")
    if not bake_writable(path):
        raise FileExistsError(f"{path} exists and is not a bake folder (no {MANIFEST} with format {FORMAT!r}); "
                              "refusing to replace it — choose another output path")
    path.mkdir(parents=True, exist_ok=True)
    (path / MANIFEST).unlink(missing_ok=True)
    with atomic_path(path / VERTICES) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, vertices)
    write_json_atomic(path / MANIFEST, {**meta, "format": FORMAT, "version": VERSION,
                                        "num_frames": int(vertices.shape[0]), "num_vertices": int(vertices.shape[1])})
    return path


def read_bake(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """The vertices float32 [N, V, 3] and manifest of a bake folder (checked against each other)."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        vertices = np.load(path / VERTICES, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable bake folder: {exc}") from None
    if manifest.get("format") != FORMAT or list(vertices.shape[:2]) != [manifest.get("num_frames"),
                                                                          manifest.get("num_vertices")]:
        raise ValueError(f"{path}: {MANIFEST} does not describe {VERTICES} {list(vertices.shape)}")
    return vertices, manifest
