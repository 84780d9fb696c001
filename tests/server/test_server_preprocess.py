"""Preprocessing as a server job: a short clip of the reference footage becomes a listed dataset; a
file that is not a video, or an unknown option, fails the job with a clear error (not the server)."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from dyntet_protocol import EventListener

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dyntet.face.preprocess") is None,
                                reason="preprocessing is not part of this build")


def test_a_preprocess_job_writes_a_dataset(fresh_server, tmp_path, reference_data):
    workspace = tmp_path / "ws"
    (workspace / "videos").mkdir(parents=True)
    shutil.copy(reference_data / "footage" / "obama_b.mp4", workspace / "videos" / "obama.mp4")
    server = fresh_server(workspace=workspace)
    with server.client(timeout_s=20) as client:
        listener = EventListener(client.server.events_endpoint)
        listener.subscribe_all_jobs()
        listener.poll(0.3)
        stages = set()
        listener.on(lambda event: stages.add(event.data["stage"]), types=["progress"])
        job = client.preprocess("videos/obama.mp4", "datasets/obama", {"max_seconds": 1.2, "size": 128})
        done = client.wait(job["id"], timeout_s=300, poll_s=0.5)
        listener.poll(0.5)
        listener.close()
        datasets = client.list_datasets()
    assert done["state"] == "done", done
    assert done["result"] == {"dataset": "datasets/obama"}
    assert [d["name"] for d in datasets] == ["obama"]
    assert datasets[0]["complete"] and datasets[0]["size"] == 128 and datasets[0]["num_frames"] >= 20
    assert stages, "progress events should name the preprocessing stages"


def test_preprocess_failures_are_job_failures(fresh_server):
    server = fresh_server()
    (server.workspace / "videos").mkdir()
    (server.workspace / "videos" / "junk.mp4").write_bytes(b"this is not a video" * 100)
    with server.client() as client:
        junk = client.preprocess("videos/junk.mp4", "datasets/junk")["id"]
        option = client.preprocess("videos/junk.mp4", "datasets/option", {"tracker": {"no_such_option": 1}})["id"]
        records = [client.wait(j, timeout_s=120) for j in (junk, option)]
        assert client.ping() < 1.0
    assert [r["state"] for r in records] == ["failed", "failed"]
    assert all(r["error"]["code"] == "job_failed" for r in records)
    assert "unknown field(s) ['no_such_option']" in records[1]["error"]["message"]
