"""Read and amend the JSON chunk of a glTF binary (``.glb``) without touching its binary chunk.

Why: Blender's glTF exporter has no place for the frame rate, and it names images after their files
(``base_color``), so two heads exported from one scene collide in an engine's content folder. The
exporter writes the file; :func:`amend_glb` then adds ``dyntet_fps`` to the scene's and the asset's
``extras`` and prefixes image names with the subject. Numpy-free and bpy-free: ``struct`` and ``json``.

GLB layout (glTF 2.0 §4.4): a 12-byte header ``magic, version, length``, then chunks of
``length, type, data``; chunk 0 is JSON (type ``JSON``, padded with spaces to 4 bytes), chunk 1, when
present, the binary buffer (type ``BIN\\0``). Byte offsets inside the buffer do not depend on the JSON's
length, so rewriting the JSON chunk leaves every accessor valid.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, Callable

MAGIC = b"glTF"
JSON_CHUNK = b"JSON"
FPS_KEY = "dyntet_fps"
"""``extras`` key of the frame rate (frames per second, a float), on ``scenes[*]`` and ``asset``."""


class GlbError(ValueError):
    """The file is not a glTF 2.0 binary this module can amend."""


def _split(data: bytes, path: Path) -> tuple[dict[str, Any], bytes]:
    if len(data) < 20 or data[:4] != MAGIC:
        raise GlbError(f"{path} is not a glTF binary (.glb): it does not start with 'glTF'")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2 or length != len(data):
        raise GlbError(f"{path}: glTF version {version}, header length {length} for {len(data)} bytes; "
                       "expected a complete glTF 2.0 file")
    chunk_length, chunk_type = struct.unpack_from("<I4s", data, 12)
    if chunk_type != JSON_CHUNK or 20 + chunk_length > len(data):
        raise GlbError(f"{path}: the first chunk is {chunk_type!r}, expected the JSON chunk")
    try:
        document = json.loads(data[20:20 + chunk_length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GlbError(f"{path}: the JSON chunk cannot be read ({exc})") from None
    return document, data[20 + chunk_length:]


def read_glb_json(path: str | Path) -> dict[str, Any]:
    """The glTF JSON document of a ``.glb`` file."""
    path = Path(path)
    return _split(path.read_bytes(), path)[0]


def glb_fps(document: dict[str, Any]) -> float | None:
    """The frame rate a DynTet export recorded (scene extras first, then asset extras), or None.

    The backend's own exporter has written ``scenes[0].extras.fps`` since version 1; that is read too.
    """
    places = [scene.get("extras") for scene in document.get("scenes") or [] if isinstance(scene, dict)]
    places.append((document.get("asset") or {}).get("extras"))
    for extras in places:
        if not isinstance(extras, dict):
            continue
        for key in (FPS_KEY, "fps"):
            value = extras.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1000:
                return float(value)
    return None


def amend_glb(path: str | Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the JSON document of ``path`` in place, rewriting the file atomically."""
    path = Path(path)
    document, rest = _split(path.read_bytes(), path)
    change(document)
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + len(rest)
    blob = MAGIC + struct.pack("<II", 2, total) + struct.pack("<I4s", len(text), JSON_CHUNK) + text + rest
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(blob)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def stamp(document: dict[str, Any], fps: float, subject: str) -> None:
    """Record ``fps`` in the scenes' and the asset's ``extras`` and name every image ``<subject>_<name>``."""
    for holder in [*(document.get("scenes") or []), document.setdefault("asset", {"version": "2.0"})]:
        extras = holder.get("extras")
        holder["extras"] = {**(extras if isinstance(extras, dict) else {}), FPS_KEY: float(fps)}
    prefix = f"{subject}_"
    for image in document.get("images") or []:
        name = str(image.get("name") or "image")
        if not name.startswith(prefix):
            image["name"] = prefix + name
