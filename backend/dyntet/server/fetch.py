"""Bulk reads for ``fetch.*`` requests: file chunks and frame ranges of ``.npy`` arrays.

Arrays are opened with ``np.load(mmap_mode="r", allow_pickle=False)``: only the requested frames
are read, and an object array (which would need unpickling) is refused by numpy itself. Writers
replace these files atomically (new inode), so a mapped file never shrinks under us.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from dyntet_protocol.codec import ALLOWED_DTYPES, canonical_dtype
from dyntet_protocol.constants import MAX_CHUNK_BYTES
from dyntet_protocol.errors import ErrorCode, ProtocolError

from .workspace import Workspace

_WIRE_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}


def fetch_file(ws: Workspace, rel: str, offset: int, length: int) -> tuple[dict[str, Any], list[Any]]:
    """Bytes ``[offset, offset + length)`` of a file (fewer at its end) and facts to detect changes."""
    path = ws.resolve(rel, kind="file")
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        if offset > stat.st_size:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"offset {offset} is beyond the end of {rel} ({stat.st_size} bytes)",
                                {"offset": offset, "size": stat.st_size})
        handle.seek(offset)
        data = handle.read(min(length, MAX_CHUNK_BYTES, stat.st_size - offset))
    result = {"path": rel, "offset": offset, "length": len(data), "size": stat.st_size,
              "mtime_ns": stat.st_mtime_ns, "eof": offset + len(data) >= stat.st_size}
    return result, [data]


def array_info(ws: Workspace, rel: str, array: str) -> dict[str, Any]:
    """Stored dtype and shape of ``rel/ARRAY.npy`` and the bytes of one float32 frame."""
    data = _open_array(ws, rel, array)
    return {"path": rel, "array": array, "dtype": data.dtype.str, "shape": list(data.shape),
            "frame_bytes": math.prod(data.shape[1:]) * 4}


def fetch_frames(ws: Workspace, rel: str, array: str, start: int, stop: int,
                 dtype: str) -> tuple[dict[str, Any], list[Any]]:
    """Frames ``[start, stop)`` of ``rel/ARRAY.npy`` converted to little-endian ``dtype``.

    Returns the result map (``dtype``, ``shape`` of the buffer) and one buffer: C-order bytes,
    float32/float16 ``[stop - start, ...]``.
    """
    data = _open_array(ws, rel, array)
    if data.dtype.kind != "f":
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"{array}.npy holds {data.dtype}, not floats; fetch it with fetch.file",
                            {"dtype": data.dtype.str})
    total = data.shape[0]
    if not start < stop <= total:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"frames [{start}, {stop}) are not a non-empty range within [0, {total})",
                            {"start": start, "stop": stop, "num_frames": total})
    wire = _WIRE_DTYPES[dtype]
    frame_bytes = math.prod(data.shape[1:]) * wire.itemsize
    if (stop - start) * frame_bytes > MAX_CHUNK_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"{stop - start} frames of {frame_bytes} bytes exceed {MAX_CHUNK_BYTES} per reply",
                            {"limit": MAX_CHUNK_BYTES, "max_frames": max(1, MAX_CHUNK_BYTES // max(frame_bytes, 1))})
    chunk = np.ascontiguousarray(data[start:stop], dtype=wire)
    result = {"path": rel, "array": array, "start": start, "stop": stop, "num_frames": total,
              "dtype": wire.str, "shape": list(chunk.shape)}
    return result, [memoryview(chunk).cast("B")]


def _open_array(ws: Workspace, rel: str, array: str) -> np.ndarray:
    folder = ws.resolve(rel, kind="dir")
    inside = ws.relative(folder)
    path = ws.resolve(f"{inside}/{array}.npy" if inside else f"{array}.npy", kind="file")
    if _magic(path) != b"\x93NUMPY":
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"{array}.npy in {rel} is not an .npy file", {"path": rel, "array": array})
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{array}.npy in {rel} is not a readable .npy array: {exc}",
                            {"path": rel, "array": array}) from None
    if not isinstance(data, np.ndarray) or data.ndim < 1:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"{array}.npy in {rel} has no frame axis", {"shape": list(np.shape(data))})
    try:
        canonical_dtype(data.dtype)
    except TypeError:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"{array}.npy has dtype {data.dtype}, not one of {sorted(ALLOWED_DTYPES)}",
                            {"dtype": str(data.dtype)}) from None
    return data


def _magic(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(6)
