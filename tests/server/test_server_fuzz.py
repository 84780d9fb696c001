"""Fuzz: ≥ 10,000 malformed, truncated, oversized, wrong-typed and wrong-version requests from a
seeded generator against a real server process. Each must be answered with a structured error (never
``internal``) or, above the transport's size limit, dropped; afterwards the server is alive and
answers ``hello`` within 100 ms."""

from __future__ import annotations

import random
import time

import msgpack
import pytest
import zmq

from dyntet_protocol import PROTOCOL_VERSION
from dyntet_protocol.constants import MAGIC, MAX_REQUEST_BYTES
from dyntet_protocol.errors import ErrorCode
from dyntet_protocol.framing import decode_reply

from server_harness import start_server, write_sequence_folder

NUM_MESSAGES = 10_000
BATCH = 500
SEED = 20240607

# Valid requests; every fuzz case breaks at least one thing about one of them.
TEMPLATES = [
    ("hello", {"client": "fuzz"}),
    ("ping", {}),
    ("list.datasets", {}),
    ("list.files", {"path": "sequences"}),
    ("job.status", {"job": "20240101-000000-abcdef"}),
    ("job.list", {"states": ["running"], "limit": 5}),
    ("job.cancel", {"job": "20240101-000000-abcdef"}),
    ("fetch.file", {"path": "sequences/demo/manifest.json", "offset": 0, "length": 1024}),
    ("fetch.info", {"path": "sequences/demo", "array": "vertices"}),
    ("fetch.frames", {"path": "sequences/demo", "array": "vertices", "start": 0, "stop": 2, "dtype": "float16"}),
    ("job.submit", {"kind": "selftest", "params": {"run": "runs/fuzz", "steps": 1}}),
    ("upload.begin", {"path": "footage/fuzz.bin", "size": 3, "sha256": "0" * 64}),
    ("upload.chunk", {"upload_id": "0" * 32, "offset": 0, "data": b"abc"}),
    ("upload.finish", {"upload_id": "0" * 32}),
]
WRONG_VALUES = [None, True, 1.5, -1, 2**60, "", "x" * 300, b"\x00\xff", [], [1, 2], {}, {"a": 1},
                msgpack.ExtType(1, b"\x03<f4\x01" + b"\x00" * 8), msgpack.ExtType(42, b"zz")]


def _header(rng: random.Random, request_type: str, params: dict) -> dict:
    return {"protocol": PROTOCOL_VERSION, "id": f"f-{rng.randrange(10**9)}", "type": request_type, "params": params}


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _wrong_for(value, rng: random.Random):
    """A value whose type differs from ``value``'s (so a typed field is certainly violated)."""
    while True:
        candidate = rng.choice(WRONG_VALUES)
        if type(candidate) is not type(value):
            return candidate


def make_case(rng: random.Random) -> list[bytes]:
    """One malformed request (frames after the routing id)."""
    request_type, params = rng.choice(TEMPLATES)
    params = dict(params)
    body = _header(rng, request_type, params)
    kind = rng.randrange(16)
    if kind == 0:   # random bytes, no protocol frame
        return [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))]
    if kind == 1:   # wrong magic
        return [rng.choice([b"", b"DYNTEt", b"DYNTET\x00", b"HTTP/1.1"]), _pack(body)]
    if kind == 2:   # garbage body
        return [MAGIC, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))]
    if kind == 3:   # truncated body
        data = _pack(body)
        return [MAGIC, data[:rng.randrange(0, len(data))]]
    if kind == 4:   # trailing bytes after a valid body
        return [MAGIC, _pack(body) + bytes([rng.randrange(256)])]
    if kind == 5:   # body is not a map
        return [MAGIC, _pack(rng.choice([1, "hello", [body], None, 3.5, b"bin"]))]
    if kind == 6:   # wrong or missing protocol version
        body["protocol"] = rng.choice([0, PROTOCOL_VERSION + 1, -1, 2**40, "1", None, 1.0, True, [1]])
        if rng.random() < 0.2:
            del body["protocol"]
        return [MAGIC, _pack(body)]
    if kind == 7:   # broken id
        body["id"] = rng.choice(["", "a" * 65, "has space", 12, None, ["x"], "\u00e9t\u00e9"])
        return [MAGIC, _pack(body)]
    if kind == 8:   # unknown or wrongly typed type
        body["type"] = rng.choice(["", "hello ", "HELLO", "job.delete", "../hello", 7, None, "x" * 100])
        return [MAGIC, _pack(body)]
    if kind == 9:   # a parameter of the wrong type
        key = rng.choice(sorted(params) or ["path"])
        params[key] = _wrong_for(params.get(key, 0), rng)
        if not params:
            params["unexpected"] = 1
        body["params"] = params
        return [MAGIC, _pack(body)]
    if kind == 10:  # out-of-range numbers and unknown keys
        choice = rng.randrange(4)
        if choice == 0:
            body["type"], body["params"] = "fetch.file", {"path": "a", "offset": -rng.randrange(1, 10**6)}
        elif choice == 1:
            body["type"], body["params"] = "fetch.file", {"path": "a", "length": rng.choice([0, 2**40])}
        elif choice == 2:
            body["type"], body["params"] = "job.list", {"limit": rng.choice([0, -5, 10**9])}
        else:
            params["unknown_" + str(rng.randrange(100))] = 1
            body["params"] = params
        return [MAGIC, _pack(body)]
    if kind == 11:  # oversized strings/containers inside the size limit
        choice = rng.randrange(3)
        if choice == 0:
            body["params"] = {"client": "x" * rng.randrange(70_000, 200_000)}
            body["type"] = "hello"
        elif choice == 1:
            body["params"] = {"path": "p/" * rng.randrange(600, 2000)}
            body["type"] = "list.files"
        else:
            body["params"] = {"states": ["running"] * rng.randrange(7, 50)}
            body["type"] = "job.list"
        return [MAGIC, _pack(body)]
    if kind == 12:  # deep nesting (built as raw bytes: msgpack itself refuses to pack it), in every position
        field = rng.choice(["params", "protocol", "id", "type", "params.client"])
        depth = rng.choice([rng.randrange(200, 5000), rng.randrange(900, 1023)])  # around both recursion limits
        nested = b"\x91" * depth + b"\x01"
        if field == "params.client":
            field, nested = "params", b"\x81" + _pack("client") + nested
        body.pop(field, None)
        raw = _pack(body)
        return [MAGIC, bytes([raw[0] + 1]) + raw[1:] + _pack(field) + nested]
    if kind == 13:  # extra frames
        return [MAGIC, _pack(body), *[b"x" * rng.randrange(0, 10) for _ in range(rng.randrange(1, 8))]]
    if kind == 14:  # hostile ext payloads, non-string keys, timestamps
        choice = rng.randrange(4)
        if choice == 0:
            body["params"] = {"path": msgpack.ExtType(1,
                                                      bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))))}
        elif choice == 1:
            body["params"] = {"path": msgpack.ExtType(1, b"\x03|O8\x01" + (3).to_bytes(8, "little") + b"\x00" * 24)}
        elif choice == 2:
            return [MAGIC, b"\x81\x01\x02" if rng.random() < 0.5 else b"\x81\xc4\x01k\x01"]
        else:
            body["params"] = {"path": msgpack.Timestamp(rng.randrange(10**9), 0)}
        return [MAGIC, _pack(body)]
    # kind 15: path traversal in an otherwise valid request
    body["type"], body["params"] = "fetch.file", {"path": rng.choice(["../x", "/etc/passwd", ".dyntet/server.json",
                                                                        "a/../../b", "a\\..\\b", "C:/x", "~/x"])}
    return [MAGIC, _pack(body)]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("fuzz") / "ws"
    write_sequence_folder(workspace / "sequences" / "demo", num_frames=4, num_verts=10)
    server = start_server(workspace)
    yield server
    server.stop()


def _dealer(endpoint: str) -> zmq.Socket:
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.linger = 0
    socket.sndhwm = socket.rcvhwm = 0
    socket.connect(endpoint)
    return socket


def test_fuzz_every_malformed_request_gets_a_structured_error(fuzz_server):
    rng = random.Random(SEED)
    cases = [make_case(rng) for _ in range(NUM_MESSAGES)]
    assert all(sum(len(f) for f in c) <= MAX_REQUEST_BYTES for c in cases), "oversized frames are tested below"
    watcher = fuzz_server.client(timeout_s=5)  # connected before the storm, used after it
    socket = _dealer(fuzz_server.requests)
    codes: dict[str, int] = {}
    bad: list[str] = []
    start = time.monotonic()
    try:
        for first in range(0, NUM_MESSAGES, BATCH):
            batch = cases[first:first + BATCH]
            for frames in batch:
                socket.send_multipart(frames)
            for i in range(len(batch)):
                if not socket.poll(10_000):
                    pytest.fail(f"no reply to fuzz case {first + i}: {batch[i]!r:.200}")
                reply = decode_reply(socket.recv_multipart())
                code = reply.error.code.value if not reply.ok and isinstance(reply.error.code,
                                                                             ErrorCode) else repr(reply.error)
                codes[code] = codes.get(code, 0) + 1
                if reply.ok or code == ErrorCode.INTERNAL.value or code not in {c.value for c in ErrorCode}:
                    bad.append(f"case {first + i}: {reply!r:.300}")
    finally:
        socket.close(linger=0)
    elapsed = time.monotonic() - start
    assert not bad, bad[:5]
    assert sum(codes.values()) == NUM_MESSAGES
    assert len(codes) >= 7, f"the generator should reach many error paths, reached {codes}"
    assert fuzz_server.alive(), fuzz_server.log()[-2000:]
    t0 = time.perf_counter()
    info = watcher.hello()
    hello_s = time.perf_counter() - t0
    watcher.close()
    assert hello_s < 0.1, f"hello took {hello_s * 1000:.1f} ms after the fuzz"
    assert info.protocol == PROTOCOL_VERSION
    print(f"{NUM_MESSAGES} fuzz cases in {elapsed:.1f} s; codes {codes}; hello after: {hello_s * 1000:.1f} ms")


def test_frames_above_the_size_limit_are_dropped_and_the_server_carries_on(fuzz_server):
    for size in (MAX_REQUEST_BYTES + 1, 4 * MAX_REQUEST_BYTES):
        socket = _dealer(fuzz_server.requests)
        try:
            socket.send_multipart([MAGIC, b"\x00" * size])
            assert not socket.poll(500), "an oversized frame must not be processed"
        finally:
            socket.close(linger=0)
    with fuzz_server.client(timeout_s=5) as client:
        start = time.perf_counter()
        client.hello()
        assert time.perf_counter() - start < 0.1
    assert fuzz_server.alive()
