"""Field validators, the request catalogue and the frame layouts of requests, replies and events."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest

from dyntet_protocol import PROTOCOL_VERSION
from dyntet_protocol.codec import packb
from dyntet_protocol.constants import MAGIC, MAX_REQUEST_BYTES, MAX_UPLOAD_CHUNK_BYTES
from dyntet_protocol.errors import ErrorCode, ProtocolError
from dyntet_protocol.framing import (
    BadMessage, decode_event, decode_reply, decode_request, encode_error, encode_event, encode_reply,
    encode_request, job_topic,
)
from dyntet_protocol.messages import REQUESTS
from dyntet_protocol.schema import Array, Bytes, Float, Int, JsonMap, ListOf, Nullable, Record, RelPath, Str

# One valid parameter map per request type (the round-trip test covers them all).
VALID = {
    "hello": {"client": "blender"},
    "ping": {},
    "list.datasets": {}, "list.runs": {}, "list.sequences": {},
    "list.files": {"path": "runs"},
    "job.submit": {"kind": "train", "params": {"dataset": "datasets/a", "overrides": {"iterations": 10}}},
    "job.status": {"job": "20240101-120000-abcdef"},
    "job.list": {"states": ["running", "queued"], "limit": 5},
    "job.cancel": {"job": "20240101-120000-abcdef"},
    "job.resume": {"job": "20240101-120000-abcdef"},
    "fetch.file": {"path": "runs/a/preview.png", "offset": 10, "length": 100},
    "fetch.info": {"path": "sequences/a"},
    "fetch.frames": {"path": "sequences/a", "start": 0, "stop": 10, "dtype": "float16"},
    "upload.begin": {"path": "footage/take 1.mp4", "size": 10, "sha256": "0123456789abcdef" * 4},
    "upload.chunk": {"upload_id": "0123456789abcdef" * 2, "offset": 0, "data": b"\x00\xffbytes"},
    "upload.finish": {"upload_id": "0123456789abcdef" * 2},
    "upload.abort": {"upload_id": "0123456789abcdef" * 2},
    "bake.exact": {"run": "runs/a", "names": ["jawOpen"], "controls": np.ones((3, 1), np.float32), "start": 1,
                   "out": "bakes/a"},
    "shutdown": {},
}


def test_every_request_type_has_a_valid_example():
    assert set(VALID) == set(REQUESTS)


def test_arrays_are_checked_for_rank_dtype_size_and_finiteness():
    field = Array(ndim=2, max_items=8)
    out = field.check(np.ones((2, 3), np.float64), "params.controls")
    assert out.dtype == np.float32 and out.shape == (2, 3)
    for bad, code in ((np.ones(3, np.float32), "bad_request"), (np.ones((2, 2), np.int32), "bad_request"),
                      ([[1.0]], "bad_request"), (np.array([[np.inf]], np.float32), "bad_request"),
                      (np.ones((3, 3), np.float32), "too_large")):
        with pytest.raises(ProtocolError) as caught:
            field.check(bad, "params.controls")
        assert caught.value.code.value == code and caught.value.details["field"] == "params.controls"


@pytest.mark.parametrize("request_type", sorted(REQUESTS))
def test_requests_round_trip(request_type):
    frames = encode_request(request_type, VALID[request_type], "abc-1")
    assert frames[0] == MAGIC and len(frames) == 2
    request = decode_request(frames)
    assert (request.id, request.type, request.protocol) == ("abc-1", request_type, PROTOCOL_VERSION)
    for key, value in VALID[request_type].items():
        assert np.array_equal(request.params[key], value) if isinstance(value, np.ndarray) else \
            request.params[key] == value
    assert set(request.params) == set(REQUESTS[request_type].params.fields)  # defaults filled in


def test_replies_and_errors_round_trip_with_buffers():
    buffer = np.arange(6, dtype=np.float32).tobytes()
    reply = decode_reply(encode_reply("r-1", "fetch.frames", {"shape": [2, 3], "a": np.ones(2)}, [buffer]))
    assert reply.ok and reply.id == "r-1" and bytes(reply.buffers[0]) == buffer
    np.testing.assert_array_equal(reply.result["a"], np.ones(2))
    error = ProtocolError(ErrorCode.NOT_FOUND, "no such job", {"job": "x"})
    reply = decode_reply(encode_error("r-2", "job.status", error))
    assert not reply.ok and reply.error.to_wire() == error.to_wire()
    assert isinstance(reply.error.code, ErrorCode)


def test_events_round_trip():
    frames = encode_event(job_topic("20240101-120000-abcdef"), "preview", 7, "srv", {"path": "runs/a/p.png"},
                          job="20240101-120000-abcdef", buffers=[b"\x89PNG"])
    assert frames[0] == b"job.20240101-120000-abcdef" and frames[1] == MAGIC
    event = decode_event(frames)
    assert (event.type, event.seq, event.server, event.job) == ("preview", 7, "srv", "20240101-120000-abcdef")
    assert bytes(event.buffers[0]) == b"\x89PNG" and math.isfinite(event.time)
    with pytest.raises(ValueError):
        job_topic("../x")


def _body(**fields):
    body = {"protocol": PROTOCOL_VERSION, "id": "x-1", "type": "ping", "params": {}}
    body.update(fields)
    return [MAGIC, msgpack.packb({k: v for k, v in body.items() if v is not _DROP})]


_DROP = object()


@pytest.mark.parametrize("frames, code, knows_id", [
    ([b"nope"], ErrorCode.BAD_FRAMES, False),
    ([b"", b""], ErrorCode.BAD_FRAMES, False),
    ([MAGIC], ErrorCode.BAD_FRAMES, False),
    ([MAGIC, b"\xc1"], ErrorCode.BAD_ENCODING, False),
    ([MAGIC, msgpack.packb([1, 2])], ErrorCode.BAD_REQUEST, False),
    ([MAGIC, b"x" * (MAX_REQUEST_BYTES + 1)], ErrorCode.TOO_LARGE, False),
    (_body(protocol=PROTOCOL_VERSION + 1), ErrorCode.UNSUPPORTED_PROTOCOL, True),
    (_body(protocol=True), ErrorCode.UNSUPPORTED_PROTOCOL, True),
    (_body(protocol=_DROP), ErrorCode.UNSUPPORTED_PROTOCOL, True),
    (_body(id=_DROP), ErrorCode.BAD_REQUEST, False),
    (_body(id="has space"), ErrorCode.BAD_REQUEST, False),
    (_body(id="x" * 65), ErrorCode.BAD_REQUEST, False),
    (_body(type="nope"), ErrorCode.UNKNOWN_TYPE, True),
    (_body(type=3), ErrorCode.BAD_REQUEST, True),
    (_body(extra=1), ErrorCode.BAD_REQUEST, True),
    (_body(time="noon"), ErrorCode.BAD_REQUEST, True),
    (_body(params=[]), ErrorCode.BAD_REQUEST, True),
    (_body(params={"x": 1}), ErrorCode.BAD_REQUEST, True),
    (_body() + [b"extra"], ErrorCode.BAD_FRAMES, True),
    (_body(type="fetch.file", params={"path": "../x"}), ErrorCode.PATH_REFUSED, True),
    (_body(type="fetch.file", params={"path": "a", "length": 0}), ErrorCode.BAD_REQUEST, True),
    (_body(type="job.status", params={"job": "20240101-120000-ABCDEF"}), ErrorCode.BAD_REQUEST, True),
])
def test_bad_requests_raise_with_what_is_known(frames, code, knows_id):
    with pytest.raises(BadMessage) as err:
        decode_request(frames)
    assert err.value.error.code == code
    assert (err.value.request_id == "x-1") is knows_id


def test_reply_decoding_refuses_non_replies():
    for frames in ([b"x"],
                   [MAGIC, b"\xc1"], [MAGIC, packb({"ok": "yes"})], [MAGIC, packb({"ok": True, "protocol": 1})]):
        with pytest.raises(ProtocolError) as err:
            decode_reply(frames)
        assert err.value.code == ErrorCode.BAD_REPLY
    with pytest.raises(ProtocolError) as err:
        decode_reply([MAGIC, packb({"ok": True, "protocol": 99, "result": {}})])
    assert err.value.code == ErrorCode.UNSUPPORTED_PROTOCOL
    reply = decode_reply([MAGIC, packb({"ok": False, "protocol": 1, "error": "oops"})])
    assert reply.error.code == ErrorCode.BAD_REPLY


def test_field_validators():
    assert Int(min=0, max=3).check(3, "f") == 3
    for bad in (4, -1, True, 1.0, "1", None):
        with pytest.raises(ProtocolError):
            Int(min=0, max=3).check(bad, "f")
    assert Float(min=0).check(2, "f") == 2.0
    for bad in (math.nan, math.inf, -0.5, False, "1"):
        with pytest.raises(ProtocolError):
            Float(min=0).check(bad, "f")
    assert Str(choices=("a",)).check("a", "f") == "a"
    with pytest.raises(ProtocolError) as err:
        Str(max_len=3).check("abcd", "f")
    assert err.value.code == ErrorCode.TOO_LARGE
    assert Nullable(Int()).check(None, "f") is None
    assert ListOf(Int(), max_len=2).check([1, 2], "f") == [1, 2]
    with pytest.raises(ProtocolError):
        ListOf(Int(), max_len=2).check([1, 2, 3], "f")
    record = Record({"a": Int(), "b": Str()}, defaults={"b": "x"})
    assert record.check({"a": 1}, "p") == {"a": 1, "b": "x"}
    with pytest.raises(ProtocolError) as err:
        record.check({"b": "y"}, "p")
    assert err.value.details["field"] == "p.a"
    with pytest.raises(ProtocolError) as err:
        record.check({"a": 1, "c": 2}, "p")
    assert err.value.details["unknown"] == ["'c'"]
    assert Bytes(max_len=4).check(bytearray(b"abcd"), "f") == b"abcd"
    assert Bytes(max_len=4).check(memoryview(b"ab"), "f") == b"ab"
    with pytest.raises(ProtocolError) as err:
        Bytes(max_len=4).check(b"abcde", "f")
    assert err.value.code == ErrorCode.TOO_LARGE and err.value.details["limit"] == 4
    for bad in ("abcd", [1, 2], None, 3):
        with pytest.raises(ProtocolError) as err:
            Bytes().check(bad, "f")
        assert err.value.code == ErrorCode.BAD_REQUEST


def test_upload_fields_are_checked():
    begin = REQUESTS["upload.begin"].params
    for bad in ({"sha256": "ABCDEF" + "0" * 58}, {"sha256": "0" * 63}, {"size": -1}, {"path": "../x"}):
        with pytest.raises(ProtocolError):
            begin.check({"path": "footage/a.mp4", "size": 1, "sha256": "0" * 64, **bad}, "params")
    chunk = REQUESTS["upload.chunk"].params
    with pytest.raises(ProtocolError) as err:
        chunk.check({"upload_id": "0" * 32, "offset": 0, "data": b"\0" * (MAX_UPLOAD_CHUNK_BYTES + 1)}, "params")
    assert err.value.code == ErrorCode.TOO_LARGE
    frames = encode_request("upload.chunk", {"upload_id": "0" * 32, "offset": 0,
                                             "data": b"\0" * MAX_UPLOAD_CHUNK_BYTES}, "x" * 64)
    assert sum(len(f) for f in frames) <= MAX_REQUEST_BYTES, "a full chunk fits in one request frame"
    assert decode_request(frames).params["data"] == b"\0" * MAX_UPLOAD_CHUNK_BYTES


def test_json_values_are_bounded():
    spec = JsonMap(max_depth=2, max_items=3)
    value = {"a": [1, 2.5, None], "b": {"c": "d"}, "e": True}
    assert spec.check(value, "o") == value
    assert spec.check({"a": {"b": 1}}, "o") == {"a": {"b": 1}}
    for bad in ([], {"a": {"b": {"c": {"d": 1}}}}, {"a": [1, 2, 3, 4]}, {1: 2}, {"a": b"bytes"},
                {"a": math.nan}, {"a": 2**60}, {"": 1}):
        with pytest.raises(ProtocolError):
            spec.check(bad, "o")


@pytest.mark.parametrize("path", ["a", "runs/anna", "sequences/anna/vertices.npy", "a b/c-d_e.f", "ünï/cödé"])
def test_canonical_relative_paths_pass(path):
    assert RelPath().check(path, "p") == path


def test_relpath_root_only_where_allowed():
    assert RelPath(allow_root=True).check("", "p") == ""
    with pytest.raises(ProtocolError) as err:
        RelPath().check("", "p")
    assert err.value.code == ErrorCode.PATH_REFUSED
