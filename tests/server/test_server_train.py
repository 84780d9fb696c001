"""The real trainer as a server job: kill -9 of its process → interrupted with its last checkpoint →
``job.resume`` continues from it to the end; previews arrive as PNG bytes in events."""

from __future__ import annotations

import importlib.util
import os
import signal

import pytest

from dyntet_protocol import EventListener

from server_harness import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("dyntet.train.api") is None
                       or importlib.util.find_spec("dyntet.data.synthetic") is None,
                       reason="training is not part of this build"),
]

# A deliberately tiny network (seconds per iteration on 2 CPU cores).
TINY = {
    "iterations": 300, "minutes": 0, "render_size": 64, "batch_size": 1, "face_samples": 256, "sdf_init_steps": 10,
    "checkpoint_every": 10, "preview_every": 10, "log_every": 1,
    "model.geometry.grid_resolution": 16, "model.geometry.hidden_dim": 16,
    "model.geometry.expression_feature_dim": 16, "model.geometry.expression_window": 9,
    "model.appearance.hash_levels": 4, "model.appearance.hash_log2_table": 10,
    "model.appearance.hash_max_resolution": 64, "model.appearance.hidden_dim": 16,
    "model.appearance.num_layers": 2, "model.light.cube_resolution": 8,
}


def test_kill_9_of_a_training_job_then_resume(fresh_server, tmp_path):
    from dyntet.data.synthetic import SyntheticConfig, make_subject
    from dyntet.train.checkpoint import load_checkpoint

    workspace = tmp_path / "ws"
    make_subject(workspace / "datasets" / "synth", SyntheticConfig(size=64, num_frames=24, seed=3))
    server = fresh_server(workspace=workspace)
    with server.client(timeout_s=20) as client:
        assert client.list_datasets()[0]["complete"]
        listener = EventListener(client.server.events_endpoint)
        listener.subscribe_all_jobs()
        listener.poll(0.3)
        previews = []
        listener.on(previews.append, types=["preview"])
        job_id = client.train("datasets/synth", "runs/synth", preset="preview", overrides=TINY, device="cpu")["id"]

        def past_first_checkpoint():
            listener.poll(0)
            record = client.job(job_id)
            assert record["state"] in ("queued", "running"), record
            return (record["progress"] or {}).get("step", 0) >= 12 and record["checkpoint"]["exists"]

        wait_for(past_first_checkpoint, 600, interval_s=0.5, what="training past its first checkpoint")
        before = load_checkpoint(workspace / "runs" / "synth")["iteration"]
        os.kill(client.job(job_id)["pid"], signal.SIGKILL)
        interrupted = client.wait(job_id, timeout_s=60)
        assert interrupted["state"] == "interrupted" and interrupted["resumable"]
        assert interrupted["checkpoint"]["exists"] and interrupted["error"]["details"]["signal"] == "SIGKILL"

        client.resume(job_id)
        done = client.wait(job_id, timeout_s=900, poll_s=1.0)
        listener.poll(0.5)
        listener.close()
    assert done["state"] == "done", done
    assert done["result"] == {"run": "runs/synth", "resumed": True}
    assert 10 <= before < TINY["iterations"], "killed mid-run, after a checkpoint"
    assert load_checkpoint(workspace / "runs" / "synth")["iteration"] == TINY["iterations"]
    assert done["attempts"] == 2
    pngs = [e for e in previews if e.data.get("included")]
    assert pngs and bytes(pngs[-1].buffers[0][:8]) == b"\x89PNG\r\n\x1a\n"
    assert pngs[-1].data["path"] == "runs/synth/preview.png"
