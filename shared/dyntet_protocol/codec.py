"""msgpack codec with numpy arrays as an ext type, and hard limits when decoding untrusted bytes.

Arrays travel as ext type :data:`EXT_NDARRAY` whose payload is::

    u8   n            length of the dtype string
    n    dtype        numpy ``dtype.str``, little-endian or byte-order-free (``"<f4"``, ``"|u1"``)
    u8   ndim         0 … :data:`MAX_NDIM`
    ndim × u64 (LE)   shape
    ...  data         C-order raw bytes, exactly ``prod(shape) · itemsize``

Only plain numeric dtypes are allowed (:data:`ALLOWED_DTYPES`); object, string and structured dtypes
are refused in both directions, so nothing here can ever unpickle. Large arrays should travel in
their own frames (see :mod:`dyntet_protocol.framing`); the ext type is for small ones.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from .constants import MAX_CONTAINER_ITEMS, MAX_INLINE_ARRAY_BYTES, MAX_REQUEST_BYTES, MAX_STRING_CHARS
from .errors import ErrorCode, ProtocolError

EXT_NDARRAY = 1
MAX_NDIM = 8
ALLOWED_DTYPES = frozenset({
    "|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8",
})
"""``dtype.str`` of every dtype that may cross the wire (little-endian)."""


@dataclass(frozen=True)
class Limits:
    """Bounds applied while decoding a body; anything beyond raises ``too_large``."""

    max_body_bytes: int = MAX_REQUEST_BYTES
    max_str_len: int = MAX_STRING_CHARS
    max_bin_len: int = MAX_REQUEST_BYTES
    max_items: int = MAX_CONTAINER_ITEMS
    """Longest array and map."""
    max_ext_len: int = MAX_INLINE_ARRAY_BYTES


REQUEST_LIMITS = Limits()
"""What a server accepts from clients."""
REPLY_LIMITS = Limits(max_body_bytes=MAX_INLINE_ARRAY_BYTES + MAX_REQUEST_BYTES,
                      max_bin_len=MAX_INLINE_ARRAY_BYTES)
"""What a client accepts from a server (bodies only; bulk data is in buffer frames)."""


def canonical_dtype(dtype: np.dtype | str) -> np.dtype:
    """The little-endian form of ``dtype``; raises ``TypeError`` for dtypes that may not cross the wire."""
    dt = np.dtype(dtype)
    if dt.byteorder == ">" or (dt.byteorder == "=" and not _little_endian_host()):
        dt = dt.newbyteorder("<")
    if dt.str not in ALLOWED_DTYPES:
        raise TypeError(f"dtype {np.dtype(dtype)} cannot cross the wire; allowed: {sorted(ALLOWED_DTYPES)}")
    return dt


def encode_array(array: np.ndarray) -> msgpack.ExtType:
    """``array`` (any allowed dtype, any shape) → ext payload as laid out in the module docstring."""
    dt = canonical_dtype(array.dtype)
    if array.ndim > MAX_NDIM:
        raise TypeError(f"array has {array.ndim} dimensions; at most {MAX_NDIM} may cross the wire")
    data = np.ascontiguousarray(array, dtype=dt)
    dtype_str = dt.str.encode("ascii")
    header = struct.pack(f"<B{len(dtype_str)}sB{array.ndim}Q", len(dtype_str), dtype_str, array.ndim,
                         *array.shape)
    return msgpack.ExtType(EXT_NDARRAY, header + data.tobytes())


def decode_array(payload: bytes) -> np.ndarray:
    """Ext payload → read-only array (a view of ``payload``; copy it to modify).

    Raises ProtocolError(``bad_encoding``) when the payload does not match its own header.
    """
    try:
        n = payload[0]
        dtype_str = payload[1:1 + n].decode("ascii")
        ndim = payload[1 + n]
        offset = 2 + n
        shape = struct.unpack_from(f"<{ndim}Q", payload, offset) if ndim else ()
        offset += 8 * ndim
    except (IndexError, UnicodeDecodeError, struct.error) as exc:
        raise ProtocolError(ErrorCode.BAD_ENCODING, f"truncated array header: {exc}") from None
    if dtype_str not in ALLOWED_DTYPES:
        raise ProtocolError(ErrorCode.BAD_ENCODING, f"array dtype {dtype_str!r} is not allowed",
                            {"allowed": sorted(ALLOWED_DTYPES)})
    if ndim > MAX_NDIM:
        raise ProtocolError(ErrorCode.BAD_ENCODING, f"array has {ndim} dimensions (max {MAX_NDIM})")
    dt = np.dtype(dtype_str)
    expected = math.prod(shape) * dt.itemsize
    if expected != len(payload) - offset:
        raise ProtocolError(ErrorCode.BAD_ENCODING,
                            f"array header says {expected} bytes of data, payload has {len(payload) - offset}",
                            {"shape": list(shape), "dtype": dtype_str})
    return np.frombuffer(payload, dtype=dt, count=math.prod(shape), offset=offset).reshape(shape)


def array_from_buffer(buffer: Any, dtype: str, shape: list[int] | tuple[int, ...]) -> np.ndarray:
    """Wrap a received buffer frame (bytes / memoryview / ``zmq.Frame.buffer``) as an array, no copy.

    ``dtype`` and ``shape`` come from the reply body and are checked against the buffer's length.
    """
    try:
        dt = canonical_dtype(dtype)
    except TypeError as exc:
        raise ProtocolError(ErrorCode.BAD_REPLY, str(exc)) from None
    view = memoryview(buffer).cast("B")
    if not isinstance(shape, (list, tuple)) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ProtocolError(ErrorCode.BAD_REPLY, f"bad array shape ({type(shape).__name__})")
    expected = math.prod(shape) * dt.itemsize
    if expected != view.nbytes:
        raise ProtocolError(ErrorCode.BAD_REPLY,
                            f"buffer has {view.nbytes} bytes, {dtype}{list(shape)} needs {expected}")
    return np.frombuffer(view, dtype=dt).reshape(shape)


def packb(obj: Any) -> bytes:
    """Python / numpy values → msgpack bytes. Arrays become ext :data:`EXT_NDARRAY`; numpy scalars
    become Python numbers; anything else unknown raises ``TypeError`` (no silent ``str()``)."""
    return msgpack.packb(obj, default=_default, use_bin_type=True, strict_types=False)


def unpackb(data: bytes | memoryview, limits: Limits = REQUEST_LIMITS) -> Any:
    """msgpack bytes from an untrusted peer → Python values, within ``limits``.

    Raises ProtocolError: ``too_large`` when a limit is hit, ``bad_encoding`` for anything malformed
    (truncated data, trailing bytes, invalid UTF-8, non-string map keys, unknown ext types, nesting
    deeper than msgpack's stack).
    """
    if len(data) > limits.max_body_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"body of {len(data)} bytes exceeds {limits.max_body_bytes}",
                            {"limit": limits.max_body_bytes, "size": len(data)})
    try:
        return msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=True, ext_hook=_ext_hook, timestamp=0,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_bin_len, max_array_len=limits.max_items, max_map_len=limits.max_items,
            max_ext_len=limits.max_ext_len)
    except ProtocolError:
        raise
    except (ValueError, msgpack.UnpackException, RecursionError) as exc:
        # Malformed input surfaces as many exception types (ExtraData, FormatError, StackError,
        # UnicodeDecodeError, "incomplete input", "exceeds max_*_len"); all mean the same to a peer.
        text = str(exc) or type(exc).__name__
        code = ErrorCode.TOO_LARGE if "exceeds max" in text else ErrorCode.BAD_ENCODING
        raise ProtocolError(code, f"cannot decode body: {text[:200]}", {"exception": type(exc).__name__}) from None


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return encode_array(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__} in a message")


def _ext_hook(code: int, payload: bytes) -> Any:
    if code == EXT_NDARRAY:
        return decode_array(payload)
    raise ProtocolError(ErrorCode.BAD_ENCODING, f"unknown msgpack ext type {code}")


def _little_endian_host() -> bool:
    return np.little_endian
