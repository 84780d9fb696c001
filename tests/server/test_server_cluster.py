"""``dyntet serve --cluster`` on a real local Ray cluster (2 CPUs, no dashboard, loopback only): two training
jobs run at once; SIGKILL of one job's Ray worker → interrupted and resubmitted by the server from its last
checkpoint, finishing with every iteration logged once; cancel reaches the remote job; ``dyntet cluster
status`` lists slots and where each job runs."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys

import pytest

from server_harness import wait_for
from test_server_train import TINY as SERVER_TINY

ray = pytest.importorskip("ray", reason="Ray is the cluster extra (pip install '.[cluster]')")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("dyntet.train.api") is None
                       or importlib.util.find_spec("dyntet.data.synthetic") is None,
                       reason="training is not part of this build"),
]

# The server training test's tiny network at 32 px (~0.1 s per iteration on one core), 150 iterations.
TINY = {**SERVER_TINY, "iterations": 150, "render_size": 32, "face_samples": 128, "sdf_init_steps": 5}


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance for the module; its workers inherit this process's environment (PYTHONPATH).
    127.0.0.2: Ray replaces 127.0.0.1 by the machine's network address, a test stays on loopback."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.2", log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _metrics_iterations(path):
    return [json.loads(line)["iteration"] for line in path.read_text().splitlines() if line.strip()]


def test_two_jobs_at_once_and_a_killed_worker_resumes_from_its_checkpoint(cluster, fresh_server, tmp_path):
    from dyntet.data.synthetic import SyntheticConfig, make_subject
    from dyntet.train.checkpoint import load_checkpoint

    workspace = tmp_path / "ws"
    make_subject(workspace / "datasets" / "synth", SyntheticConfig(size=32, num_frames=12, seed=3))
    server = fresh_server("--cluster", cluster, workspace=workspace)
    with server.client(timeout_s=20) as client:
        jobs = [client.train("datasets/synth", f"runs/{name}", preset="preview", overrides=TINY, device="cpu")["id"]
                for name in ("a", "b")]
        victim, other = jobs

        def both_running_victim_checkpointed():
            records = [client.job(j) for j in jobs]
            assert all(r["state"] in ("queued", "running") for r in records), records
            return (all(r["state"] == "running" and r["node"] for r in records)
                    and (records[0]["progress"] or {}).get("step", 0) >= 12 and records[0]["checkpoint"]["exists"])

        wait_for(both_running_victim_checkpointed, 300, interval_s=0.2, what="two jobs running, one checkpointed")
        record = client.job(victim)
        assert record["node"].endswith("(127.0.0.2)") and record["pid"] != server.process.pid
        status = subprocess.run([sys.executable, "-m", "dyntet.cli", "cluster", "status", "--cluster", cluster,
                                 "--workspace", str(workspace), "--json"], capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["slots"] == 2 and report["cpus"] == 2
        assert {j["id"]: j["node"] for j in report["jobs"]}[victim] == record["node"]

        before = load_checkpoint(workspace / "runs" / "a")["iteration"]
        os.kill(record["pid"], signal.SIGKILL)
        wait_for(lambda: client.job(victim)["attempts"] == 2, 120, interval_s=0.2, what="the automatic resubmission")
        done = [client.wait(j, timeout_s=600, poll_s=0.5) for j in jobs]
    assert [r["state"] for r in done] == ["done", "done"], done
    assert done[0]["retries"] == 1 and done[0]["result"] == {"run": "runs/a", "resumed": True}
    assert done[1]["attempts"] == 1 and done[1]["retries"] == 0
    assert 10 <= before < TINY["iterations"], "killed mid-run, after a checkpoint"
    for name in ("a", "b"):
        assert load_checkpoint(workspace / "runs" / name)["iteration"] == TINY["iterations"]
        assert _metrics_iterations(workspace / "runs" / name / "metrics.jsonl") == list(range(1, TINY["iterations"] + 1))


def test_cancel_reaches_the_remote_job(cluster, fresh_server, tmp_path):
    server = fresh_server("--cluster", cluster, workspace=tmp_path / "ws")
    with server.client(timeout_s=20) as client:
        job = client.submit("selftest", {"run": "runs/c", "steps": 10_000, "step_s": 0.01})["id"]
        wait_for(lambda: (client.job(job)["progress"] or {}).get("step", 0) >= 5, 120, interval_s=0.1,
                 what="the selftest running on the cluster")
        client.cancel(job)
        record = client.wait(job, timeout_s=60)
    assert record["state"] == "cancelled" and record["retries"] == 0, record
    assert 5 <= record["progress"]["step"] < 10_000
    with pytest.raises(ValueError):
        ray.get_actor(f"dyntet-job-{job}", namespace="dyntet")  # the actor is gone, not left behind


def test_a_restarted_server_reattaches_to_a_job_still_running_on_the_cluster(cluster, fresh_server, tmp_path):
    workspace = tmp_path / "ws"
    first = fresh_server("--cluster", cluster, workspace=workspace)
    with first.client(timeout_s=20) as client:
        job = client.submit("selftest", {"run": "runs/r", "steps": 300, "step_s": 0.02})["id"]
        wait_for(lambda: (client.job(job)["progress"] or {}).get("step", 0) >= 5, 120, interval_s=0.1,
                 what="the selftest running on the cluster")
    first.process.kill()  # a crash: no shutdown, the job's actor keeps running
    first.process.wait(10)
    second = fresh_server("--cluster", cluster, workspace=workspace)
    with second.client(timeout_s=20) as client:
        record = client.wait(job, timeout_s=120)
    assert record["state"] == "done" and record["attempts"] == 1, record
    assert record["result"]["resumed_from"] == 0 and record["result"]["steps"] == 300
