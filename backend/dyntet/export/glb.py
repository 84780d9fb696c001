"""A small glTF 2.0 binary (``.glb``) container writer: JSON document + one binary buffer.

Knows the container rules (12-byte header, JSON and BIN chunks padded to 4 bytes, buffer views aligned to
4 bytes, accessors typed by component and element type, min/max equal to the stored values) and nothing
about heads. Large arrays may be given lazily (:class:`LazyArray`) so a long per-frame rig is produced
frame by frame while writing instead of being held in memory twice.
Spec: https://registry.khronos.org/glTF/specs/2.0/glTF-2.0.html (GLB file format, accessors).
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

GLB_MAGIC = 0x46546C67          # b"glTF"
CHUNK_JSON = 0x4E4F534A         # b"JSON"
CHUNK_BIN = 0x004E4942          # b"BIN\0"
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963

COMPONENT_TYPES: dict[np.dtype, int] = {
    np.dtype(np.int8): 5120, np.dtype(np.uint8): 5121, np.dtype(np.int16): 5122,
    np.dtype(np.uint16): 5123, np.dtype(np.uint32): 5125, np.dtype(np.float32): 5126,
}
ELEMENT_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


@dataclass
class LazyArray:
    """An array produced only when the binary chunk is written.

    ``min``/``max`` must be given when the accessor needs them (they go into the JSON, which precedes
    the binary data) and must equal the produced values exactly.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    produce: Callable[[], np.ndarray]
    min: list[float] | None = None
    max: list[float] | None = None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


ProduceFn = Callable[[], bytes]


class GlbBuilder:
    """Accumulates a glTF JSON document and its binary buffer, then writes a ``.glb`` file."""

    def __init__(self, generator: str) -> None:
        self.gltf: dict[str, Any] = {"asset": {"version": "2.0", "generator": generator}}
        self._parts: list[tuple[int, bytes | ProduceFn]] = []   # (offset, data) of each buffer view
        self._length = 0

    def add(self, key: str, item: dict[str, Any]) -> int:
        """Append ``item`` to the top-level array ``key`` (``"meshes"``, ``"nodes"``, …); returns its index."""
        items = self.gltf.setdefault(key, [])
        items.append(item)
        return len(items) - 1

    def add_view(self, nbytes: int, data: bytes | ProduceFn, target: int | None = None) -> int:
        """A buffer view of ``nbytes`` bytes at the next 4-byte boundary; ``data`` may be a producer."""
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self._length, "byteLength": nbytes}
        if target is not None:
            view["target"] = target
        self._parts.append((self._length, data))
        self._length += nbytes + (-nbytes % 4)
        return self.add("bufferViews", view)

    def add_accessor(self, data: np.ndarray | LazyArray, element: str, target: int | None = None,
                     min_max: bool = False) -> int:
        """An accessor over a new, tightly packed buffer view.

        Args:
            data: [count, n] (or [count] for SCALAR) array of a glTF component type, or a lazy one.
            element: ``"SCALAR"``, ``"VEC2"``, ``"VEC3"``, ``"VEC4"`` or ``"MAT4"``.
            target: buffer-view target (vertex attributes / indices) or None (animation, images).
            min_max: write ``min``/``max`` (required for POSITION, morph POSITION and animation inputs).
        """
        dtype = np.dtype(data.dtype)
        if dtype not in COMPONENT_TYPES:
            raise ValueError(f"dtype {dtype} is not a glTF component type")
        width = ELEMENT_SIZES[element]
        shape = tuple(data.shape)
        count = shape[0]
        if int(np.prod(shape[1:], dtype=np.int64)) != width:
            raise ValueError(f"{element} accessor needs {width} components per element, got shape {shape}")
        accessor: dict[str, Any] = {"componentType": COMPONENT_TYPES[dtype], "count": count, "type": element}
        if isinstance(data, LazyArray):
            if min_max:
                if data.min is None or data.max is None:
                    raise ValueError("a lazy accessor that needs min/max must carry them")
                accessor["min"], accessor["max"] = list(data.min), list(data.max)
            producer = data.produce
            expected = data.nbytes

            def produce() -> bytes:
                array = np.ascontiguousarray(producer(), dtype=dtype)
                if array.nbytes != expected:
                    raise RuntimeError(f"lazy accessor produced {array.nbytes} bytes, announced {expected}")
                return array.tobytes()

            accessor["bufferView"] = self.add_view(expected, produce, target)
        else:
            array = np.ascontiguousarray(data)
            if min_max:
                accessor["min"], accessor["max"] = min_max_of(array.reshape(count, width))
            accessor["bufferView"] = self.add_view(array.nbytes, array.tobytes(), target)
        return self.add("accessors", accessor)

    def add_image(self, png: bytes, name: str) -> int:
        """An embedded PNG image; returns the image index."""
        view = self.add_view(len(png), png)
        return self.add("images", {"name": name, "bufferView": view, "mimeType": "image/png"})

    def write(self, path: str | os.PathLike, on_part: Callable[[int, int], None] | None = None) -> int:
        """Write the ``.glb`` file atomically (temporary file + rename); returns its size in bytes.

        ``on_part(done, total)`` is called after each buffer view is written (for progress bars).
        """
        if self._length:
            self.gltf["buffers"] = [{"byteLength": self._length}]
        doc = json.dumps(self.gltf, separators=(",", ":"), allow_nan=False).encode("utf-8")
        doc += b" " * (-len(doc) % 4)
        total = 12 + 8 + len(doc) + (8 + self._length if self._length else 0)
        if total > 0xFFFFFFFF:
            raise ValueError(f"the file would hold {total / 2**30:.1f} GiB; GLB lengths are 32-bit (4 GiB at most)")
        path = Path(path)
        tmp = path.with_name(f".{path.name}.part")
        try:
            with open(tmp, "wb") as f:
                f.write(struct.pack("<III", GLB_MAGIC, 2, total))
                f.write(struct.pack("<II", len(doc), CHUNK_JSON))
                f.write(doc)
                if self._length:
                    f.write(struct.pack("<II", self._length, CHUNK_BIN))
                    self._write_bin(f, on_part)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return total

    def _write_bin(self, f: BinaryIO, on_part: Callable[[int, int], None] | None) -> None:
        written = 0
        for i, (offset, data) in enumerate(self._parts):
            blob = data() if callable(data) else data
            if written != offset:
                raise RuntimeError(f"buffer view {i} would start at {written}, planned {offset}")
            f.write(blob)
            pad = -len(blob) % 4
            f.write(b"\0" * pad)
            written += len(blob) + pad
            if on_part is not None:
                on_part(i + 1, len(self._parts))
        if written != self._length:
            raise RuntimeError(f"binary chunk holds {written} bytes, planned {self._length}")


def min_max_of(array: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-component min and max of an [N, C] array as JSON numbers equal to the stored values."""
    if np.issubdtype(array.dtype, np.floating):
        return ([float(x) for x in array.min(axis=0)], [float(x) for x in array.max(axis=0)])
    return ([int(x) for x in array.min(axis=0)], [int(x) for x in array.max(axis=0)])


def read_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a ``.glb`` into its JSON document and binary chunk (for tests and inspection)."""
    if len(data) < 20:
        raise ValueError(f"not a GLB file: only {len(data)} bytes")
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC or version != 2:
        raise ValueError(f"not a glTF 2.0 binary (magic {magic:#x}, version {version})")
    if length != len(data):
        raise ValueError(f"GLB header says {length} bytes, file has {len(data)}")
    json_len, json_type = struct.unpack_from("<II", data, 12)
    if json_type != CHUNK_JSON:
        raise ValueError("first GLB chunk is not JSON")
    doc = json.loads(data[20:20 + json_len])
    pos = 20 + json_len
    binary = b""
    if pos < len(data):
        bin_len, bin_type = struct.unpack_from("<II", data, pos)
        if bin_type != CHUNK_BIN:
            raise ValueError("second GLB chunk is not BIN")
        binary = data[pos + 8:pos + 8 + bin_len]
    return doc, binary


def accessor_array(doc: dict[str, Any], binary: bytes, index: int) -> np.ndarray:
    """The data of accessor ``index`` as a numpy array [count, n] (tightly packed views only)."""
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = next(d for d, code in COMPONENT_TYPES.items() if code == acc["componentType"])
    width = ELEMENT_SIZES[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    array = np.frombuffer(binary, dtype=dtype, count=acc["count"] * width, offset=start)
    return array.reshape(acc["count"], width)
