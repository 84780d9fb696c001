"""msgpack codec: numpy arrays round-trip exactly; malformed or hostile input raises typed errors."""

from __future__ import annotations

import struct

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dyntet_protocol.codec import (
    ALLOWED_DTYPES, EXT_NDARRAY, Limits, array_from_buffer, decode_array, encode_array, packb, unpackb,
)
from dyntet_protocol.errors import ErrorCode, ProtocolError

DTYPES = [np.dtype(d) for d in sorted(ALLOWED_DTYPES)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 4), (4, 5, 3), (1,) * 8])
def test_arrays_round_trip_for_every_dtype_and_shape(dtype, shape):
    rng = np.random.default_rng(0)
    array = np.asarray(rng.standard_normal(shape) * 100).astype(dtype)
    back = unpackb(packb({"a": array}))["a"]
    assert back.dtype == dtype and back.shape == shape
    np.testing.assert_array_equal(back, array)


@given(hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=4, max_side=6)))
@settings(max_examples=150, deadline=None)
def test_round_trip_property(array):
    back = unpackb(packb([array]))[0]
    assert back.dtype == array.dtype.newbyteorder("<") or back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_big_endian_and_non_contiguous_arrays_are_normalised():
    big = np.arange(12, dtype=">i4").reshape(3, 4)
    back = unpackb(packb(big))
    assert back.dtype == np.dtype("<i4")
    np.testing.assert_array_equal(back, big)
    strided = np.arange(40, dtype=np.float32).reshape(5, 8)[:, ::3]
    np.testing.assert_array_equal(unpackb(packb(strided)), strided)


def test_decoded_arrays_are_read_only_views():
    back = unpackb(packb(np.zeros(3, np.float32)))
    with pytest.raises(ValueError):
        back[0] = 1


def test_numpy_scalars_become_numbers_and_unknown_types_are_refused():
    assert unpackb(packb({"a": np.float32(1.5), "b": np.int64(7), "c": np.bool_(True)})) == {"a": 1.5,
                   "b": 7, "c": True}
    for bad in (object(), {1, 2}, np.array(["text"]), np.array([{"x": 1}], dtype=object), np.zeros(2, np.complex64)):
        with pytest.raises(TypeError):
            packb(bad)


def _ext(payload: bytes) -> bytes:
    return msgpack.packb(msgpack.ExtType(EXT_NDARRAY, payload))


@pytest.mark.parametrize("payload, why", [
    (b"", "empty"),
    (b"\x03<f4", "no ndim"),
    (b"\x03<f4\x01" + struct.pack("<Q", 2), "shape says 8 bytes, none follow"),
    (b"\x03<f4\x01" + struct.pack("<Q", 1) + b"\x00" * 5, "one byte too many"),
    (b"\x03|O8\x01" + struct.pack("<Q", 1) + b"\x00" * 8, "object dtype (would need pickle)"),
    (b"\x03<U1\x01" + struct.pack("<Q", 1) + b"\x00" * 4, "unicode dtype"),
    (b"\x03>f4\x01" + struct.pack("<Q", 1) + b"\x00" * 4, "big-endian on the wire"),
    (b"\x03<f4\x09" + struct.pack("<9Q", *[1] * 9) + b"\x00" * 4, "too many dimensions"),
    (b"\x03<f4\x01" + struct.pack("<Q", 2**62) + b"\x00" * 4, "absurd shape"),
    (b"\xff<f4", "dtype length beyond the payload"),
    (b"\x03\xff\xfe\xfd\x00", "non-ASCII dtype"),
])
def test_malformed_array_payloads_are_refused(payload, why):
    with pytest.raises(ProtocolError) as err:
        unpackb(_ext(payload))
    assert err.value.code == ErrorCode.BAD_ENCODING, why


@pytest.mark.parametrize("data, code", [
    (b"", ErrorCode.BAD_ENCODING),
    (b"\xc1", ErrorCode.BAD_ENCODING),                               # reserved byte
    (b"\x92\x01", ErrorCode.BAD_ENCODING),                           # truncated array
    (msgpack.packb(1) + b"\x00", ErrorCode.BAD_ENCODING),            # trailing data
    (b"\x81\x01\x02", ErrorCode.BAD_ENCODING),                       # integer map key
    (b"\xa2\xff\xfe", ErrorCode.BAD_ENCODING),                       # invalid UTF-8
    (b"\x91" * 100_000 + b"\x01", ErrorCode.BAD_ENCODING),           # nesting deeper than the stack
    (msgpack.packb(msgpack.ExtType(9, b"x")), ErrorCode.BAD_ENCODING),  # unknown ext type
    (msgpack.packb("x" * 70_000), ErrorCode.TOO_LARGE),
    (msgpack.packb(list(range(200_000))), ErrorCode.TOO_LARGE),
    (msgpack.packb(b"x" * 2_000_000), ErrorCode.TOO_LARGE),
])
def test_malformed_bodies_raise_typed_errors(data, code):
    with pytest.raises(ProtocolError) as err:
        unpackb(data)
    assert err.value.code == code


def test_limits_are_configurable():
    data = packb({"k": "x" * 100})
    assert unpackb(data, Limits(max_str_len=100))["k"] == "x" * 100
    with pytest.raises(ProtocolError) as err:
        unpackb(data, Limits(max_str_len=99))
    assert err.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(ProtocolError):
        unpackb(data, Limits(max_body_bytes=10))


def test_array_from_buffer_checks_the_size():
    data = np.arange(6, dtype=np.float16).tobytes()
    np.testing.assert_array_equal(array_from_buffer(data, "<f2", [2, 3]), np.arange(6, dtype=np.float16).reshape(2, 3))
    for dtype, shape in (("<f2", [4, 3]), ("<f4", [2, 3]), ("|O", [1]), ("<f2", [-1, 6]), ("<f2", "6")):
        with pytest.raises(ProtocolError):
            array_from_buffer(data, dtype, shape)


def test_encode_array_layout_is_as_documented():
    ext = encode_array(np.array([[1, 2]], dtype=np.uint8))
    assert ext.code == EXT_NDARRAY
    assert ext.data == b"\x03|u1\x02" + struct.pack("<QQ", 1, 2) + b"\x01\x02"
    np.testing.assert_array_equal(decode_array(ext.data), [[1, 2]])
