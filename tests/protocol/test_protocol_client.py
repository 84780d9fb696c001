"""The Client and EventListener against scripted peers on real loopback sockets: negotiation,
timeouts and reconnects, stale replies, retries, pipelined fetches, events and heartbeats."""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable

import numpy as np
import pytest
import zmq

from dyntet_protocol import PROTOCOL_VERSION, Client, ErrorCode, EventListener, ProtocolError, RequestTimeout
from dyntet_protocol.framing import SERVER_TOPIC, decode_request, encode_error, encode_event, encode_reply, job_topic

HELLO = {"protocol": PROTOCOL_VERSION, "server_version": "test", "server_id": "s1",
         "events_endpoint": "tcp://0.0.0.0:1", "capabilities": {"ready": True}, "job_kinds": {}, "limits": {},
         "heartbeat_interval_s": 1.0}


class ScriptedServer:
    """A ROUTER on a thread; ``handler(request, count) -> list of reply frame lists`` (empty: no reply)."""

    def __init__(self, handler: Callable):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.linger = 0
        self.socket.bind("tcp://127.0.0.1:*")
        self.endpoint = self.socket.last_endpoint.decode()
        self.handler = handler
        self.requests: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            if not self.socket.poll(20):
                continue
            identity, *frames = self.socket.recv_multipart()
            request = decode_request(frames)
            self.requests.append(request)
            for reply in self.handler(request, len(self.requests)):
                self.socket.send_multipart([identity, *reply])

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.socket.close()
        self.context.term()


@pytest.fixture
def scripted():
    servers = []

    def make(handler):
        server = ScriptedServer(handler)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def ok(request, result=None, buffers=()):
    return [encode_reply(request.id, request.type, result if result is not None else {}, list(buffers))]


def test_connect_negotiates_and_maps_the_event_endpoint(scripted):
    server = scripted(lambda r, n: ok(r, {**HELLO, "events_endpoint": "tcp://0.0.0.0:6001"}))
    with Client(server.endpoint, timeout_s=2) as client:
        assert client.server.server_id == "s1"
        host = server.endpoint.rsplit(":", 1)[0]
        assert client.server.events_endpoint == f"{host}:6001"
    assert server.requests[0].params == {"client": "dyntet_protocol"}


def test_a_server_of_another_version_is_refused(scripted):
    server = scripted(lambda r, n: ok(r, {**HELLO, "protocol": PROTOCOL_VERSION + 1}))
    with pytest.raises(ProtocolError) as err:
        Client(server.endpoint, timeout_s=2).connect()
    assert err.value.code == ErrorCode.UNSUPPORTED_PROTOCOL


def test_server_errors_are_raised_with_their_code(scripted):
    server = scripted(lambda r, n: [encode_error(r.id, r.type, ProtocolError("not_found", "no job", {"job": "j"}))])
    client = Client(server.endpoint, timeout_s=2)
    with pytest.raises(ProtocolError) as err:
        client.job("20240101-120000-abcdef")
    assert err.value.code == ErrorCode.NOT_FOUND and err.value.details == {"job": "j"}
    client.close()


def test_invalid_requests_fail_locally_without_sending(scripted):
    server = scripted(lambda r, n: ok(r))
    client = Client(server.endpoint, timeout_s=1)
    for call in (lambda: client.list_files("../x"), lambda: client.request("nope"),
                 lambda: client.request("fetch.file", {"path": "a", "length": -1})):
        with pytest.raises(ProtocolError):
            call()
    time.sleep(0.1)
    assert server.requests == []
    client.close()


def test_a_lost_reply_is_retried_once_for_idempotent_requests(scripted):
    # the first ping gets no answer; the retry on a fresh socket does
    server = scripted(lambda r, n: [] if n == 1 else ok(r, {"time": 1.0}))
    client = Client(server.endpoint, timeout_s=0.3, retries=1)
    assert client.call("ping") == {"time": 1.0}
    assert len(server.requests) == 2 and server.requests[0].id != server.requests[1].id
    client.close()


def test_non_idempotent_requests_are_not_resent(scripted):
    server = scripted(lambda r, n: [])
    client = Client(server.endpoint, timeout_s=0.3, retries=3)
    with pytest.raises(RequestTimeout):
        client.submit("selftest", {"run": "runs/x"})
    assert len(server.requests) == 1, "a submit must never be duplicated by a retry"
    client.close()


def test_late_replies_to_abandoned_requests_are_discarded(scripted):
    def slow_first(request, n):
        if n == 1:
            time.sleep(0.5)  # answers after the client gave up
        return ok(request, {"n": n})

    server = scripted(slow_first)
    client = Client(server.endpoint, timeout_s=0.2, retries=0)
    with pytest.raises(RequestTimeout):
        client.call("ping")
    time.sleep(0.5)
    assert client.call("ping") == {"n": 2}
    client.close()


def test_timeout_when_nobody_listens():
    # A port bound but never listened on refuses connections and cannot be taken by anyone else —
    # including the client itself: a freed ephemeral port can be reused as the client's own source
    # port, and TCP then connects the socket to itself (seen once in CI).
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    endpoint = f"tcp://127.0.0.1:{holder.getsockname()[1]}"
    context = zmq.Context()
    client = Client(endpoint, timeout_s=0.2, retries=1, context=context)
    start = time.monotonic()
    with pytest.raises(RequestTimeout) as err:
        client.ping()
    assert 0.35 < time.monotonic() - start < 2.0  # one retry, then give up
    assert err.value.code == ErrorCode.TIMEOUT and isinstance(err.value, TimeoutError)
    client.close()
    context.term()
    holder.close()


def test_pipelined_fetch_reassembles_out_of_order_chunks(scripted):
    data = np.random.default_rng(1).standard_normal((50, 7, 3)).astype(np.float32)
    pending: list = []

    def serve(request, n):
        if request.type == "fetch.info":
            return ok(request, {"dtype": "<f4", "shape": list(data.shape), "frame_bytes": 84})
        chunk = data[request.params["start"]:request.params["stop"]].astype(request.params["dtype"])
        pending.append(ok(request, {"dtype": chunk.dtype.str, "shape": list(chunk.shape)}, [chunk.tobytes()])[0])
        if len(pending) < 3 and request.params["stop"] < 50:
            return []
        out, pending[:] = list(reversed(pending)), []  # answer the window backwards
        return out

    server = scripted(serve)
    client = Client(server.endpoint, timeout_s=2)
    seen = []
    got = client.fetch_frames("sequences/x", 3, 50, chunk_bytes=84 * 4, window=3,
                              progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(got, data[3:])
    half = client.fetch_frames("sequences/x", dtype="float16", chunk_bytes=84 * 10)
    np.testing.assert_array_equal(half, data.astype(np.float16))
    assert seen[-1] == (47, 47)
    with pytest.raises(ProtocolError):
        client.fetch_frames("sequences/x", 10, 60)
    client.close()


def test_fetch_file_notices_a_file_that_changes_during_the_transfer(scripted, tmp_path):
    def serve(request, n):
        offset = request.params["offset"]
        stamp = 1 if n < 3 else 2
        return ok(request, {"size": 100, "mtime_ns": stamp, "length": min(10, 100 - offset), "offset": offset},
                  [b"x" * min(10, 100 - offset)])

    server = scripted(serve)
    client = Client(server.endpoint, timeout_s=2)
    with pytest.raises(ProtocolError) as err:
        client.fetch_file("a.bin", tmp_path / "a.bin", chunk_bytes=10, window=1)
    assert err.value.code == ErrorCode.INVALID_STATE
    assert not (tmp_path / "a.bin").exists() and not list(tmp_path.iterdir())
    client.close()


def test_upload_pipelines_chunks_and_begins_again_when_out_of_step(scripted, tmp_path):
    """The client keeps ``window`` chunks in flight; when the server says it holds fewer bytes than were
    sent (a chunk lost with a connection), the client asks ``upload.begin`` again and continues there."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes: 11 chunks of 1,000
    received = bytearray()
    state = {"dropped": False, "max_in_flight": 0, "in_flight": 0}

    def serve(request, n):
        if request.type == "upload.begin":
            return ok(request, {"upload_id": "a" * 32, "path": request.params["path"], "size": 10_240,
                                "sha256": request.params["sha256"], "chunk_bytes": 1000,
                                "received": len(received), "complete": False})
        if request.type == "upload.chunk":
            offset, data = request.params["offset"], request.params["data"]
            if offset == 3000 and not state["dropped"]:
                state["dropped"] = True  # as if this chunk had been lost: the next ones are out of step
                return []
            if offset != len(received):
                return [encode_error(request.id, request.type, ProtocolError(
                    "invalid_state", "out of step", {"offset": offset, "received": len(received)}))]
            received.extend(data)
            return ok(request, {"upload_id": "a" * 32, "received": len(received)})
        assert request.type == "upload.finish"
        return ok(request, {"path": "footage/clip.mp4", "size": len(received), "sha256": "x", "existing": False})

    server = scripted(serve)
    client = Client(server.endpoint, timeout_s=1)
    seen = []
    result = client.upload(source, "footage/clip.mp4", progress=lambda d, t: seen.append(d), window=3)
    assert bytes(received) == source.read_bytes()
    assert result["sent"] == 10_240 and seen[-1] == 10_240
    types = [r.type for r in server.requests]
    assert types[0] == "upload.begin" and types.count("upload.begin") == 2 and types[-1] == "upload.finish"
    assert [r.params["offset"] for r in server.requests if r.type == "upload.chunk"][:6] == [
        0, 1000, 2000, 3000, 4000, 5000]
    client.close()


def test_event_listener_callbacks_heartbeats_and_gaps():
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.bind("tcp://127.0.0.1:*")
    job = "20240101-120000-abcdef"
    listener = EventListener(pub.last_endpoint.decode(), context=context)
    listener.subscribe_job(job)
    progress, everything = [], []
    listener.on(progress.append, types=["progress"], job=job)
    listener.on(everything.append)
    listener.on(lambda event: 1 / 0)  # a broken callback must not stop the others

    def publish_until(predicate):
        deadline = time.monotonic() + 5
        seq = 0
        while time.monotonic() < deadline and not predicate():
            seq += 1
            pub.send_multipart(encode_event(SERVER_TOPIC, "heartbeat", seq, "s", {"interval_s": 0.5}))
            listener.poll(0.05)

    publish_until(lambda: listener.server_alive)
    assert listener.server_alive
    for seq in (1, 2, 5):  # 3 and 4 are "lost"
        pub.send_multipart(encode_event(job_topic(job), "progress", seq, "s", {"step": seq}, job=job))
    pub.send_multipart(encode_event(job_topic("20240101-120000-000000"), "progress", 1, "s", {}, job="x"))
    deadline = time.monotonic() + 5
    while len(progress) < 3 and time.monotonic() < deadline:
        listener.poll(0.1)
    assert [e.data["step"] for e in progress] == [1, 2, 5]
    assert listener.missed == 2
    assert all(e.job in (None, job) for e in everything), "unsubscribed jobs must not arrive"
    assert listener.errors >= 3
    time.sleep(1.6)
    assert not listener.server_alive  # three 0.5 s intervals without a heartbeat
    listener.close()
    pub.close(0)
    context.term()


def test_event_listener_on_its_own_thread():
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.bind("tcp://127.0.0.1:*")
    listener = EventListener(pub.last_endpoint.decode(), context=context)
    threads = set()
    listener.on(lambda event: threads.add(threading.current_thread().name))
    listener.start()
    deadline = time.monotonic() + 5
    seq = 0
    while not threads and time.monotonic() < deadline:
        seq += 1
        pub.send_multipart(encode_event(SERVER_TOPIC, "heartbeat", seq, "s", {}))
        time.sleep(0.05)
    listener.close()
    assert threads == {"dyntet-events"}
    pub.close(0)
    context.term()
