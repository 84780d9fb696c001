"""Jobs in child processes: events, the queue, cancel, failures and crashes that never take the server
down, kill -9 → interrupted → resume, and records that survive a server restart."""

from __future__ import annotations

import os
import signal
import time

import pytest

from dyntet_protocol import ErrorCode, EventListener, ProtocolError
from dyntet.server.jobs.selftest import SelftestConfig, run_selftest

from server_harness import pid_alive, start_server, wait_for


def _progress_at_least(client, job_id, step):
    record = client.job(job_id)
    assert record["state"] in ("queued", "running"), record
    return (record["progress"] or {}).get("step", 0) >= step


def test_a_selftest_job_runs_with_events(fresh_server):
    server = fresh_server()
    with server.client() as client:
        listener = EventListener(client.server.events_endpoint)
        listener.subscribe_all_jobs()
        listener.poll(0.3)  # let the subscription reach the server before anything is published
        seen = []
        listener.on(seen.append)
        record = client.submit("selftest", {"run": "runs/check", "steps": 30, "step_s": 0.01})
        job_id = record["id"]
        assert record["state"] in ("queued", "running") and record["outputs"] == {"run": "runs/check"}
        done = client.wait(job_id, timeout_s=60)
        wait_for(lambda: listener.poll(0.1) or any(e.type == "done" for e in seen), 10, what="done event")
        listener.close()
    assert done["state"] == "done", done
    assert done["result"]["relative_error"] < 1e-9 and done["result"]["steps"] == 30
    assert done["checkpoint"]["exists"] and done["checkpoint"]["path"] == "runs/check/selftest_checkpoint.npz"
    assert any("finished" in line for line in done["log_tail"])
    types = [e.type for e in seen if e.job == job_id]
    assert types[0] == "state" and types[-1] in ("done", "state")
    assert "progress" in types and "done" in types
    progress = [e.data for e in seen if e.type == "progress"]
    assert all(0 < p["step"] <= p["total"] == 30 for p in progress)
    assert [p["step"] for p in progress] == sorted(p["step"] for p in progress)
    assert listener.missed == 0


def test_heavy_jobs_run_one_at_a_time_and_a_queued_job_can_be_cancelled(fresh_server):
    server = fresh_server()
    with server.client() as client:
        jobs = [client.submit("selftest", {"run": f"runs/q{i}", "steps": 10, "step_s": 0.02})["id"] for i in range(3)]
        extra = client.submit("selftest", {"run": "runs/q3", "steps": 10})["id"]
        assert client.job(extra)["state"] == "queued" and client.job(extra)["position"] is not None
        assert client.cancel(extra)["state"] == "cancelled"
        with pytest.raises(ProtocolError) as err:
            client.cancel(extra)
        assert err.value.code == ErrorCode.INVALID_STATE
        records = [client.wait(j, timeout_s=60) for j in jobs]
    assert [r["state"] for r in records] == ["done"] * 3
    spans = sorted((r["started"], r["finished"]) for r in records)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end - 0.05, f"two heavy jobs overlapped: {spans}"


def test_cancel_a_running_job_saves_and_stops(fresh_server):
    server = fresh_server()
    with server.client() as client:
        job_id = client.submit("selftest", {"run": "runs/c", "steps": 5000, "step_s": 0.01})["id"]
        wait_for(lambda: _progress_at_least(client, job_id, 5), 60, what="progress")
        assert client.cancel(job_id)["cancel_requested"] is True
        record = client.wait(job_id, timeout_s=30)
        assert record["state"] == "cancelled"
        assert record["checkpoint"]["exists"]
        assert not pid_alive(record["pid"])
        resumed = client.resume(job_id)
        assert resumed["state"] in ("queued", "running")
        client.cancel(job_id)
        client.wait(job_id, timeout_s=30)


def test_refusals_at_submit(fresh_server):
    server = fresh_server()
    with server.client() as client:
        cases = [
            ("nonsense", {}, ErrorCode.BAD_REQUEST),
            ("selftest", {}, ErrorCode.BAD_REQUEST),                                 # missing run
            ("selftest", {"run": "runs/x", "steps": 0}, ErrorCode.BAD_REQUEST),
            ("selftest", {"run": "runs/x", "bogus": 1}, ErrorCode.BAD_REQUEST),
            ("selftest", {"run": "../x"}, ErrorCode.PATH_REFUSED),
            ("train", {"dataset": "datasets/none", "run": "runs/t"}, ErrorCode.NOT_FOUND),
        ]
        for kind, params, code in cases:
            with pytest.raises(ProtocolError) as err:
                client.submit(kind, params)
            assert err.value.code == code, (kind, params, err.value)
        first = client.submit("selftest", {"run": "runs/same", "steps": 200, "step_s": 0.01})["id"]
        for clash in ("runs/same", "runs/same/inner", "runs"):
            with pytest.raises(ProtocolError) as err:
                client.submit("selftest", {"run": clash})
            assert err.value.code == ErrorCode.INVALID_STATE and err.value.details["job"] == first
        client.cancel(first)
        client.wait(first, timeout_s=30)
        assert client.jobs(states=["queued", "running"]) == []


def test_failures_and_crashes_never_take_the_server_down(fresh_server):
    server = fresh_server()
    with server.client() as client:
        ids = {mode: client.submit("selftest", {"run": f"runs/{mode}", "steps": 20, "step_s": 0.0, "fail_at": 3,
                                                "fail_with": mode})["id"]
               for mode in ("error", "memory", "abort", "crash")}
        records = {mode: client.wait(job_id, timeout_s=60) for mode, job_id in ids.items()}
        assert client.ping() < 1.0
        assert records["error"]["state"] == "failed"
        assert records["error"]["error"]["code"] == "job_failed"
        assert "selftest failure requested" in records["error"]["error"]["details"]["traceback"]
        assert records["memory"]["state"] == "failed" and records["memory"]["error"]["code"] == "out_of_memory"
        for mode, sig in (("abort", "SIGABRT"), ("crash", "SIGKILL")):
            assert records[mode]["state"] == "interrupted", records[mode]
            assert records[mode]["error"]["code"] == "job_crashed"
            assert records[mode]["error"]["details"]["signal"] == sig
        # a failed job can be resumed (a resumed selftest skips the injected failure)
        client.resume(ids["error"])
        assert client.wait(ids["error"], timeout_s=60)["state"] == "done"
    assert server.alive()


def test_kill_9_of_a_job_process_then_resume_continues_from_the_checkpoint(fresh_server):
    server = fresh_server()
    params = {"run": "runs/k", "steps": 120, "step_s": 0.02, "checkpoint_every": 10}
    with server.client() as client:
        job_id = client.submit("selftest", params)["id"]
        wait_for(lambda: _progress_at_least(client, job_id, 25), 60, what="progress past a checkpoint")
        pid = client.job(job_id)["pid"]
        os.kill(pid, signal.SIGKILL)
        record = client.wait(job_id, timeout_s=30)
        assert record["state"] == "interrupted" and record["resumable"]
        assert record["error"]["details"]["signal"] == "SIGKILL"
        assert record["checkpoint"]["exists"]
        resumed = client.resume(job_id)
        assert resumed["state"] in ("queued", "running")
        done = client.wait(job_id, timeout_s=60)
    assert done["state"] == "done" and done["attempts"] == 2 and done["pid"] != pid
    assert done["result"]["resumed_from"] >= 20 and done["result"]["resumed_from"] % 10 == 0
    straight = run_selftest(server.workspace.parent / "straight",
                            SelftestConfig(steps=120, step_s=0, checkpoint_every=10))
    # a resumed run ends exactly where a straight one does
    assert done["result"]["eigenvalue"] == straight["eigenvalue"]


def test_a_restarted_server_lists_earlier_jobs_and_resumes_the_interrupted_one(fresh_server, tmp_path):
    workspace = tmp_path / "ws"
    first = fresh_server(workspace=workspace)
    with first.client() as client:
        finished = client.submit("selftest", {"run": "runs/a", "steps": 5, "step_s": 0})["id"]
        client.wait(finished, timeout_s=60)
        job_id = client.submit("selftest", {"run": "runs/b", "steps": 120, "step_s": 0.02})["id"]
        wait_for(lambda: _progress_at_least(client, job_id, 15), 60, what="progress")
        child_pid = client.job(job_id)["pid"]
    first.process.kill()  # the server dies without any chance to clean up
    first.process.wait(10)
    killed_at = time.monotonic()
    wait_for(lambda: not pid_alive(child_pid), 20, what="the orphaned job to stop on its own")
    assert time.monotonic() - killed_at < 5, "an orphaned job notices at its next step, not after the grace period"

    second = fresh_server(workspace=workspace)
    with second.client() as client:
        records = {r["id"]: r for r in client.jobs()}
        assert records[finished]["state"] == "done"
        assert records[job_id]["state"] == "interrupted"
        assert records[job_id]["checkpoint"]["exists"]
        client.resume(job_id)
        done = client.wait(job_id, timeout_s=60)
    assert done["state"] == "done" and done["result"]["resumed_from"] >= 10


def test_shutdown_interrupts_running_jobs_and_keeps_queued_ones(fresh_server, tmp_path):
    workspace = tmp_path / "ws"
    server = fresh_server(workspace=workspace)
    with server.client() as client:
        running = client.submit("selftest", {"run": "runs/r", "steps": 5000, "step_s": 0.01})["id"]
        queued = client.submit("selftest", {"run": "runs/q", "steps": 3, "step_s": 0})["id"]
        wait_for(lambda: _progress_at_least(client, running, 3), 60, what="progress")
        client.shutdown()
        with pytest.raises(ProtocolError) as err:
            client.submit("selftest", {"run": "runs/late"})
        assert err.value.code in (ErrorCode.SHUTTING_DOWN, ErrorCode.TIMEOUT)
    assert server.process.wait(30) == 0
    again = fresh_server(workspace=workspace)
    with again.client() as client:
        assert client.job(running)["state"] == "interrupted"
        assert client.wait(queued, timeout_s=60)["state"] == "done", "a queued job runs after the restart"


def test_a_second_server_on_the_same_workspace_is_refused(fresh_server, tmp_path):
    fresh_server(workspace=tmp_path / "ws")
    with pytest.raises(RuntimeError, match="another dyntet server"):
        start_server(tmp_path / "ws")


def test_unavailable_kinds_are_refused_at_submit(tmp_path, monkeypatch):
    import zmq

    from dyntet.server.jobs import manager as manager_module
    from dyntet.server.jobs.kinds import JOB_KINDS, JobKind
    from dyntet.server.jobs.manager import JobManager
    from dyntet.server.jobs.store import JobStore
    from dyntet.server.workspace import Workspace

    missing = JobKind(name="generate", summary="not built yet", target="nowhere:nothing",
                      params=JOB_KINDS["selftest"].params, requires="dyntet_no_such_module")
    monkeypatch.setitem(manager_module.JOB_KINDS, "generate", missing)
    ws = Workspace(tmp_path / "ws")
    context = zmq.Context()
    published = []
    jobs = JobManager(ws, JobStore(ws.state_dir / "jobs"), context, lambda *event: published.append(event))
    try:
        assert not missing.available() and missing.describe()["available"] is False
        with pytest.raises(ProtocolError) as err:
            jobs.submit("generate", {"run": "runs/g"})
        assert err.value.code == ErrorCode.UNAVAILABLE and err.value.details["requires"] == "dyntet_no_such_module"
        assert jobs.records == {} and published == []
    finally:
        jobs.close()
        context.term()
