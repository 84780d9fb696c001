"""Uploads into the workspace (``upload.*``): against a real server over loopback — multi-chunk round
trip, resume after a dropped client, refusals — and the parts that need a controlled disk in-process
(free space, a restarted server, stale partials, placing across file systems)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
from collections import namedtuple
from pathlib import Path

import pytest

from dyntet_protocol import ErrorCode, ProtocolError
from dyntet_protocol.client import file_sha256
from dyntet_protocol.constants import MAX_UPLOAD_CHUNK_BYTES
from dyntet.server import uploads as uploads_module
from dyntet.server.uploads import Uploads, upload_id
from dyntet.server.workspace import Workspace

from server_harness import raw_request


def _file(path: Path, size: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size) if seed < 0 else bytes((i * 7 + seed) % 251 for i in range(size)))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _partials(workspace: Path, uid: str) -> list[str]:
    """Files of upload ``uid`` left in ``.dyntet/uploads``."""
    folder = workspace / ".dyntet" / "uploads"
    return sorted(p.name for p in folder.glob(f"{uid}.*")) if folder.is_dir() else []


def _begin(client, rel: str, source: Path) -> dict:
    return client.call("upload.begin", path=rel, size=source.stat().st_size, sha256=_sha(source))


# --- over the wire -------------------------------------------------------------------------------------


def test_a_multi_chunk_file_arrives_intact_and_atomically(served, tmp_path):
    source = _file(tmp_path / "take 1.mp4", 2 * MAX_UPLOAD_CHUNK_BYTES + 12_345, seed=-1)
    seen: list[tuple[int, int]] = []
    with served.client() as client:
        assert client.server.limits["upload_chunk_bytes"] == MAX_UPLOAD_CHUNK_BYTES
        assert client.server.limits["max_upload_bytes"] >= 8 * 1024 ** 3
        result = client.upload(source, "footage/take 1.mp4", progress=lambda d, t: seen.append((d, t)))
        names = {e["name"] for e in client.list_files("footage")}
    size = source.stat().st_size
    dest = served.workspace / "footage" / "take 1.mp4"
    assert result == {"path": "footage/take 1.mp4", "size": size, "sha256": _sha(source), "existing": False,
                      "sent": size}
    assert _sha(dest) == _sha(source)
    assert seen[-1] == (size, size) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert "take 1.mp4" in names
    assert _partials(served.workspace, upload_id("footage/take 1.mp4", size, _sha(source))) == [], \
        "nothing is left in .dyntet/uploads"


def test_an_interrupted_upload_resumes_where_it_stopped(served, tmp_path):
    source = _file(tmp_path / "long.mov", 3 * MAX_UPLOAD_CHUNK_BYTES + 99, seed=3)
    data = source.read_bytes()
    rel = "footage/long.mov"
    first = served.client()
    begin = _begin(first, rel, source)
    assert begin["received"] == 0 and begin["complete"] is False
    step = begin["chunk_bytes"]
    for offset in (0, step):
        first.call("upload.chunk", upload_id=begin["upload_id"], offset=offset, data=data[offset:offset + step])
    first.close()  # the connection drops mid-upload
    assert not (served.workspace / rel).exists(), "a partial file never shows at its destination"

    with served.client() as second:
        again = _begin(second, rel, source)
        assert again["upload_id"] == begin["upload_id"] and again["received"] == 2 * step
        result = second.upload(source, rel)
    assert result["sent"] == len(data) - 2 * step and result["existing"] is False
    assert (served.workspace / rel).read_bytes() == data
    assert _partials(served.workspace, begin["upload_id"]) == []


def test_chunks_out_of_order_too_big_or_past_the_end_are_refused(served, tmp_path):
    source = _file(tmp_path / "clip.mp4", 5000, seed=5)
    data = source.read_bytes()
    with served.client() as client:
        uid = _begin(client, "footage/order.mp4", source)["upload_id"]
        with pytest.raises(ProtocolError) as err:
            client.call("upload.chunk", upload_id=uid, offset=100, data=data[100:200])
        assert err.value.code == ErrorCode.INVALID_STATE
        assert err.value.details["received"] == 0 and err.value.details["offset"] == 100
        client.call("upload.chunk", upload_id=uid, offset=0, data=data[:1000])
        with pytest.raises(ProtocolError) as err:  # a resent chunk is out of step too
            client.call("upload.chunk", upload_id=uid, offset=0, data=data[:1000])
        assert err.value.code == ErrorCode.INVALID_STATE and err.value.details["received"] == 1000

        big = raw_request(client, "upload.chunk", {"upload_id": uid, "offset": 1000,
                                            "data": b"\0" * (MAX_UPLOAD_CHUNK_BYTES + 1)})
        assert not big.ok and big.error.code == ErrorCode.TOO_LARGE
        assert big.error.details["limit"] == MAX_UPLOAD_CHUNK_BYTES
        with pytest.raises(ProtocolError) as err:
            client.call("upload.chunk", upload_id=uid, offset=1000, data=b"x" * 4001)
        assert err.value.code == ErrorCode.BAD_REQUEST
        with pytest.raises(ProtocolError) as err:
            client.call("upload.finish", upload_id=uid)
        assert err.value.code == ErrorCode.INVALID_STATE and err.value.details["received"] == 1000
        with pytest.raises(ProtocolError) as err:
            client.call("upload.chunk", upload_id="0" * 32, offset=0, data=b"x")
        assert err.value.code == ErrorCode.NOT_FOUND

        assert client.call("upload.abort", upload_id=uid)["aborted"] is True
        assert client.call("upload.abort", upload_id=uid)["aborted"] is False
        with pytest.raises(ProtocolError) as err:
            client.call("upload.chunk", upload_id=uid, offset=1000, data=data[1000:2000])
        assert err.value.code == ErrorCode.NOT_FOUND
    assert not (served.workspace / "footage" / "order.mp4").exists()


def test_a_wrong_checksum_is_refused_and_nothing_appears(served, tmp_path):
    source = _file(tmp_path / "clip.mp4", MAX_UPLOAD_CHUNK_BYTES + 10, seed=7)
    rel = "footage/corrupt.mp4"
    with served.client() as client:
        with pytest.raises(ProtocolError) as err:
            client.upload(source, rel, sha256="ab" * 32)
        assert err.value.code == ErrorCode.INVALID_STATE
        assert err.value.details["expected_sha256"] == "ab" * 32
        assert err.value.details["actual_sha256"] == _sha(source)
        assert not (served.workspace / rel).exists()
        uid = upload_id(rel, source.stat().st_size, "ab" * 32)
        assert _partials(served.workspace, uid) == [], "the mismatching bytes are discarded"
        assert client.call("upload.begin", path=rel, size=source.stat().st_size, sha256="ab" * 32)["received"] == 0
        client.call("upload.abort", upload_id=uid)


def test_paths_outside_the_workspace_are_refused(served, tmp_path):
    with served.client() as client:
        for path in ("../escape.mp4", "/tmp/escape.mp4", ".dyntet/uploads/x.part", "footage/../../x",
                     "footage\\x.mp4", "~/x.mp4", "C:/x.mp4", "footage/.hidden.mp4"):
            reply = raw_request(client, "upload.begin", {"path": path, "size": 1, "sha256": "0" * 64})
            assert not reply.ok and reply.error.code == ErrorCode.PATH_REFUSED, (path, reply.error)
    assert not (served.workspace.parent / "escape.mp4").exists()


def test_a_destination_with_the_same_bytes_finishes_without_sending(served, tmp_path):
    source = _file(tmp_path / "same.mp4", 2 * MAX_UPLOAD_CHUNK_BYTES, seed=11)
    shutil.copyfile(source, _file(served.workspace / "footage" / "same.mp4", 0))
    with served.client() as client:
        sent_types: list[str] = []
        send = client._send
        client._send = lambda kind, params: (sent_types.append(kind), send(kind, params))[1]
        result = client.upload(source, "footage/same.mp4")
    assert result["existing"] is True and result["sent"] == 0
    assert sent_types == ["upload.begin"], "no chunk, no finish"


def test_a_destination_with_other_content_or_a_folder_is_refused(served, tmp_path):
    source = _file(tmp_path / "new.mp4", 3000, seed=13)
    other = _file(served.workspace / "footage" / "taken.mp4", 3000, seed=14)
    before = _sha(other)
    (served.workspace / "footage" / "adir.mp4").mkdir(parents=True)
    _file(served.workspace / "afile", 10)
    with served.client() as client:
        for rel, conflict in (("footage/taken.mp4", "content"), ("footage/adir.mp4", "folder"),
                              ("afile/clip.mp4", "parent")):
            with pytest.raises(ProtocolError) as err:
                client.upload(source, rel)
            assert err.value.code == ErrorCode.INVALID_STATE and err.value.details["conflict"] == conflict, rel
    assert _sha(other) == before


def test_the_server_size_limit(fresh_server, tmp_path):
    server = fresh_server("--max-upload-gib", str(4096 / 1024 ** 3))
    with server.client() as client:
        assert client.server.limits["max_upload_bytes"] == 4096
        client.upload(_file(tmp_path / "small.bin", 4096), "footage/small.bin")
        with pytest.raises(ProtocolError) as err:
            client.upload(_file(tmp_path / "big.bin", 4097), "footage/big.bin")
    assert err.value.code == ErrorCode.TOO_LARGE and err.value.details["limit"] == 4096


# --- in-process: the disk under control ---------------------------------------------------------------


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "ws")


def _send_all(uploads: Uploads, uid: str, data: bytes, start: int = 0, stop: int | None = None) -> None:
    stop = len(data) if stop is None else stop
    for offset in range(start, stop, uploads.chunk_bytes):
        uploads.chunk(uid, offset, data[offset:min(offset + uploads.chunk_bytes, stop)])


def test_not_enough_free_space_says_how_much_is_needed(ws, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(uploads_module.shutil, "disk_usage", lambda path: usage(10 ** 9, 10 ** 9 - 1000, 1000))
    uploads = Uploads(ws, chunk_bytes=600)
    data = bytes(range(256)) * 10  # 2560 bytes
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(ProtocolError) as err:
        uploads.begin("footage/a.bin", len(data), sha)
    assert err.value.code == ErrorCode.NO_SPACE
    assert err.value.details == {"path": "footage/a.bin", "needed": 2560, "free": 1000}
    assert "needs" in err.value.message and "2560 bytes" in err.value.message and "1000 bytes" in err.value.message

    monkeypatch.setattr(uploads_module.shutil, "disk_usage", lambda path: usage(10 ** 9, 0, 10 ** 9))
    uid = uploads.begin("footage/a.bin", len(data), sha)["upload_id"]
    _send_all(uploads, uid, data, stop=1800)
    monkeypatch.setattr(uploads_module.shutil, "disk_usage", lambda path: usage(10 ** 9, 0, 760))
    assert uploads.begin("footage/a.bin", len(data), sha)["received"] == 1800, "only what is left must fit"


def test_a_full_disk_during_a_chunk_is_a_typed_error_and_keeps_whole_chunks(ws, monkeypatch):
    uploads = Uploads(ws, chunk_bytes=100)
    data = b"y" * 300
    uid = uploads.begin("a.bin", len(data), hashlib.sha256(data).hexdigest())["upload_id"]
    uploads.chunk(uid, 0, data[:100])
    real_open = open

    class Full:
        def __init__(self, *args, **kwargs):
            self.handle = real_open(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def seek(self, offset):
            self.handle.seek(offset)

        def write(self, chunk):
            self.handle.write(chunk[:10])
            self.handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(uploads_module, "open", Full, raising=False)
    with pytest.raises(ProtocolError) as err:
        uploads.chunk(uid, 100, data[100:200])
    assert err.value.code == ErrorCode.NO_SPACE and err.value.details["needed"] == 200
    monkeypatch.undo()
    assert uploads.begin("a.bin", len(data), hashlib.sha256(data).hexdigest())["received"] == 100


def test_a_restarted_server_resumes_and_verifies_from_disk(ws):
    data = os.urandom(5000)
    sha = hashlib.sha256(data).hexdigest()
    before = Uploads(ws, chunk_bytes=1000)
    uid = before.begin("footage/r.bin", len(data), sha)["upload_id"]
    _send_all(before, uid, data, stop=3000)
    after = Uploads(ws, chunk_bytes=1000)  # a new server process: no running digest
    assert after.begin("footage/r.bin", len(data), sha)["received"] == 3000
    _send_all(after, uid, data, start=3000)
    assert after.finish(uid)["sha256"] == sha
    assert (ws.root / "footage" / "r.bin").read_bytes() == data


def test_stale_partials_are_pruned_and_ids_are_deterministic(ws):
    uploads = Uploads(ws, chunk_bytes=10)
    old = uploads.begin("old.bin", 20, "1" * 64)["upload_id"]
    uploads.chunk(old, 0, b"0123456789")
    assert old == upload_id("old.bin", 20, "1" * 64) != upload_id("old.bin", 21, "1" * 64)
    long_ago = time.time() - uploads_module.STALE_S - 60
    for path in uploads.folder.iterdir():
        os.utime(path, (long_ago, long_ago))
    fresh = uploads.begin("fresh.bin", 20, "2" * 64)["upload_id"]
    assert sorted(p.stem for p in uploads.folder.iterdir()) == [fresh, fresh]
    with pytest.raises(ProtocolError) as err:
        uploads.chunk(old, 10, b"0123456789")
    assert err.value.code == ErrorCode.NOT_FOUND


@pytest.mark.parametrize("failure", [errno.EXDEV, errno.EPERM])
def test_placing_without_a_shared_file_system_or_hard_links(ws, monkeypatch, failure):
    uploads = Uploads(ws, chunk_bytes=64)
    data = os.urandom(200)
    uid = uploads.begin("footage/x.bin", len(data), hashlib.sha256(data).hexdigest())["upload_id"]
    _send_all(uploads, uid, data)
    calls: list[tuple[str, str]] = []

    def link(src, dst):
        calls.append((str(src), str(dst)))
        if failure == errno.EPERM or len(calls) == 1:
            raise OSError(failure, os.strerror(failure))
        shutil.copyfile(src, dst)  # a "link" that works, for the second attempt

    monkeypatch.setattr(uploads_module.os, "link", link)
    assert uploads.finish(uid)["existing"] is False
    assert (ws.root / "footage" / "x.bin").read_bytes() == data
    assert sorted(os.listdir(ws.root / "footage")) == ["x.bin"], "no hidden copy is left beside it"
    assert list(uploads.folder.iterdir()) == []


def test_file_sha256_matches_hashlib(tmp_path):
    source = _file(tmp_path / "f.bin", 3 * 1024 * 1024 + 5, seed=1)
    seen = []
    assert file_sha256(source, progress=lambda d, t: seen.append(d)) == _sha(source)
    assert seen[-1] == source.stat().st_size
