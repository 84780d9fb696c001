"""Requests against a real server process over loopback: hello, listings, file and frame fetches,
two clients at once, and clients that vanish or stop reading mid-transfer."""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np
import pytest
import zmq

from dyntet_protocol import PROTOCOL_VERSION, Client, ErrorCode, ProtocolError
from dyntet_protocol.framing import decode_reply, encode_request
from dyntet.server.handlers import HANDLERS
from dyntet_protocol.messages import REQUESTS


def test_every_request_type_has_exactly_one_handler():
    assert set(HANDLERS) == set(REQUESTS)


def test_hello_negotiates_and_describes_the_server(served):
    with served.client(name="pytest") as client:
        info = client.server
        assert info.protocol == PROTOCOL_VERSION
        assert info.events_endpoint == served.events
        assert info.raw["secure"] is False
        assert set(info.job_kinds) >= {"selftest", "train", "preprocess"}
        assert info.job_kinds["selftest"]["available"] is True
        assert info.limits["max_chunk_bytes"] >= info.limits["default_chunk_bytes"]
        assert info.capabilities["ready"] is True  # --no-probe: ready, no device
        assert client.ping() < 1.0


def test_a_request_of_another_protocol_version_gets_a_typed_error(served):
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.linger = 0
    socket.connect(served.requests)
    try:
        socket.send_multipart(encode_request("hello", {}, "old-1", protocol=PROTOCOL_VERSION + 1))
        assert socket.poll(5000)
        reply = decode_reply(socket.recv_multipart())
    finally:
        socket.close()
    assert reply.ok is False and reply.id == "old-1"
    assert reply.error.code == ErrorCode.UNSUPPORTED_PROTOCOL
    assert reply.error.details["supported"] == [PROTOCOL_VERSION]


def test_listings(served):
    with served.client() as client:
        sequences = client.list_sequences()
        assert [s["name"] for s in sequences] == ["demo"]
        assert sequences[0]["complete"] and sequences[0]["num_frames"] == served.vertices.shape[0]
        assert client.list_datasets() == [] and client.list_runs() == []
        names = {e["name"]: e for e in client.list_files("sequences/demo")}
        assert set(names) == {"vertices.npy", "faces.npy", "head_pose.npy", "manifest.json"}
        assert names["vertices.npy"]["size"] == (served.workspace / "sequences/demo/vertices.npy").stat().st_size
        root = {e["name"] for e in client.list_files("")}
        assert ".dyntet" not in root and "sequences" in root


def test_fetch_file_in_chunks_matches_the_file(served, tmp_path):
    source = served.workspace / "sequences/demo/vertices.npy"
    with served.client() as client:
        seen = []
        dest = client.fetch_file("sequences/demo/vertices.npy", tmp_path / "copy.npy", chunk_bytes=300_000,
                                 window=3, progress=lambda done, total: seen.append((done, total)))
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    assert seen[-1] == (source.stat().st_size, source.stat().st_size)
    assert len(seen) == -(-source.stat().st_size // 300_000)
    assert not list(tmp_path.glob("*.part")), "no partial file is left behind"


def test_fetch_empty_file_and_offsets(served):
    (served.workspace / "empty.txt").write_bytes(b"")
    (served.workspace / "ten.txt").write_bytes(b"0123456789")
    with served.client() as client:
        assert client.fetch_bytes("empty.txt") == b""
        assert client.fetch_bytes("ten.txt", chunk_bytes=3) == b"0123456789"
        reply = client.request("fetch.file", {"path": "ten.txt", "offset": 7, "length": 100})
        assert bytes(reply.buffers[0]) == b"789" and reply.result["eof"] is True
        with pytest.raises(ProtocolError) as err:
            client.request("fetch.file", {"path": "ten.txt", "offset": 11})
        assert err.value.code == ErrorCode.BAD_REQUEST
        with pytest.raises(ProtocolError) as err:
            client.fetch_bytes("sequences")
        assert err.value.code == ErrorCode.NOT_FOUND


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_fetch_frames_range(served, dtype):
    with served.client() as client:
        info = client.array_info("sequences/demo")
        assert info["shape"] == list(served.vertices.shape) and info["dtype"] == "<f4"
        got = client.fetch_frames("sequences/demo", 7, 41, dtype=dtype, chunk_bytes=200_000)
    assert got.dtype == np.dtype(dtype) and got.shape == (34, *served.vertices.shape[1:])
    np.testing.assert_array_equal(got, served.vertices[7:41].astype(dtype))


def test_fetch_frames_refusals(served):
    np.save(served.workspace / "sequences/demo/labels.npy", np.zeros((4, 2), np.int32))
    np.save(served.workspace / "sequences/demo/objects.npy", np.array([{"a": 1}] * 3, dtype=object))
    (served.workspace / "sequences/demo/fake.npy").write_bytes(b"not an array")
    with served.client() as client:
        cases = [
            ({"start": 5, "stop": 5}, ErrorCode.BAD_REQUEST),           # empty range
            ({"start": 0, "stop": 10_000}, ErrorCode.BAD_REQUEST),      # beyond the end
            ({"start": 0, "stop": 1, "array": "labels"}, ErrorCode.BAD_REQUEST),   # not floats
            ({"start": 0, "stop": 1, "array": "objects"}, ErrorCode.BAD_REQUEST),  # would need pickle
            ({"start": 0, "stop": 1, "array": "fake"}, ErrorCode.BAD_REQUEST),
            ({"start": 0, "stop": 1, "array": "missing"}, ErrorCode.NOT_FOUND),
            ({"start": 0, "stop": 1, "array": "../x"}, ErrorCode.BAD_REQUEST),     # not an array name
        ]
        for params, code in cases:
            with pytest.raises(ProtocolError) as err:
                client.request("fetch.frames", {"path": "sequences/demo", **params})
            assert err.value.code == code, (params, err.value)


def test_two_clients_at_once(served):
    errors: list[BaseException] = []
    fetched: list[np.ndarray] = []
    pings: list[float] = []

    def fetcher():
        try:
            with Client(served.requests, timeout_s=20) as client:
                for _ in range(4):
                    fetched.append(client.fetch_frames("sequences/demo", chunk_bytes=500_000))
        except BaseException as exc:  # reported below
            errors.append(exc)

    def pinger():
        try:
            with Client(served.requests, timeout_s=20) as client:
                for _ in range(50):
                    pings.append(client.ping())
                    assert [s["name"] for s in client.list_sequences()] == ["demo"]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fetcher), threading.Thread(target=pinger)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(fetched) == 4 and all(np.array_equal(f, served.vertices) for f in fetched)
    assert len(pings) == 50


def _raw_dealer(endpoint: str) -> zmq.Socket:
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.linger = 0
    socket.connect(endpoint)
    return socket


def test_a_client_vanishing_mid_transfer_leaves_the_server_unaffected(served):
    for round_ in range(3):
        socket = _raw_dealer(served.requests)
        for i in range(40):
            socket.send_multipart(encode_request("fetch.frames", {"path": "sequences/demo", "start": 0, "stop": 20},
                                                 f"vanish-{round_}-{i}"))
        if round_ == 1:
            assert socket.poll(5000)
            socket.recv_multipart()  # read one chunk, then vanish
        socket.close(linger=0)
    with served.client() as client:
        start = time.perf_counter()
        client.ping()
        assert time.perf_counter() - start < 0.5
        np.testing.assert_array_equal(client.fetch_frames("sequences/demo", 0, 3), served.vertices[:3])
    assert served.alive()


def test_a_client_that_stops_reading_does_not_block_others(served):
    stuck = _raw_dealer(served.requests)
    try:
        for i in range(300):  # ~1.2 MB each: far beyond the server's per-client queue
            stuck.send_multipart(encode_request("fetch.frames", {"path": "sequences/demo", "start": 0, "stop": 20},
                                                f"stuck-{i}"))
        with served.client() as client:
            worst = max(client.ping() for _ in range(20))
        assert worst < 1.0, f"a ping took {worst:.3f} s while another client was not reading"
    finally:
        stuck.close(linger=0)
    assert served.alive()
