"""Backend control without Blender: the panel-state reducer, record/event translation, the local process."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blender_addon.control import state as st
from blender_helpers import free_port_pair
from blender_addon.control.commands import BackendSettings
from blender_addon.control.local import BackendSetupError, LocalBackend, LocalConfig, base_command, is_backend_process
from blender_addon.control.records import update_from_event, update_from_progress, update_from_record
from blender_addon.control.worker import Worker

JOB = "20250101-120000-abcdef"

# A record as ``dyntet serve`` sends it (copied from a real selftest run).
RECORD = {
    "id": JOB, "kind": "selftest", "params": {"run": "runs/st", "steps": 10}, "state": "done",
    "progress": {"stage": "selftest", "step": 10, "total": 10, "message": "power iteration 10/10",
                 "metrics": {"eigenvalue": 1.99999}, "eta_s": 0.0, "preview": None},
    "result": {"steps": 10, "run": "runs/st"}, "error": None, "outputs": {"run": "runs/st"},
}


# -- reducer ---------------------------------------------------------------------------------------------


def test_phases_follow_the_connection_and_jobs() -> None:
    state = st.BackendState()
    assert state.phase == "disconnected"
    state.apply(st.Connecting("tcp://127.0.0.1:5555"))
    assert state.phase == "disconnected" and state.connection == "connecting"
    state.apply(st.Connected("tcp://127.0.0.1:5555", "0.1.0", 1, "cpu"))
    assert state.phase == "idle" and state.connected
    state.apply(st.JobUpdate(JOB, kind="train", state="running", step=3, total=10))
    assert state.phase == "busy" and state.busy and state.job.fraction == pytest.approx(0.3)
    state.apply(st.JobUpdate(JOB, state="failed", error_code="out_of_memory", error_message="out of memory"))
    assert state.phase == "failed"
    assert "train failed: out of memory" == state.problem.message and "preset" in state.problem.hint
    state.apply(st.ClearProblem())
    assert state.phase == "failed"  # the current job still shows its failure
    state.apply(st.ConnectionLost("gone", "restart"))
    assert state.phase == "failed" and state.connection == "lost"


def test_job_updates_keep_what_they_do_not_mention() -> None:
    state = st.BackendState()
    state.apply(st.JobUpdate(JOB, kind="train", state="running", step=4, total=8, metrics={"loss": 0.5}), now=1.0)
    state.apply(st.JobUpdate(JOB, step=5), now=2.0)
    job = state.jobs[JOB]
    assert (job.kind, job.state, job.step, job.total, job.metrics, job.updated) == ("train", "running", 5, 8,
                                                                                   {"loss": 0.5}, 2.0)


def test_the_panel_follows_the_newest_job_of_a_kind() -> None:
    state = st.BackendState()
    state.apply(st.JobUpdate("a", kind="train", state="done"), now=1.0)
    state.apply(st.JobUpdate("b", kind="preprocess", state="running"), now=2.0)
    state.apply(st.JobUpdate("c", kind="train", state="running"), now=3.0)
    assert state.job_of_kind("train").job_id == "c" and state.current_job == "c"
    assert state.job_of_kind("generate") is None


def test_interrupted_jobs_suggest_resume_and_logs_are_bounded() -> None:
    state = st.BackendState()
    state.apply(st.JobUpdate(JOB, kind="train", state="interrupted"))
    assert "Resume" in state.problem.hint
    for i in range(st.LOG_LINES + 10):
        state.apply(st.JobLog(JOB, f"line {i}"))
    assert len(state.log) == st.LOG_LINES and state.log[-1] == f"line {st.LOG_LINES + 9}"


def test_unknown_updates_are_refused() -> None:
    with pytest.raises(TypeError):
        st.BackendState().apply("connected")  # type: ignore[arg-type]


# -- translation of the wire format ------------------------------------------------------------------------


def test_record_translation() -> None:
    update = update_from_record(RECORD)
    assert (update.job_id, update.kind, update.state, update.step, update.total) == (JOB, "selftest", "done", 10, 10)
    assert update.metrics == {"eigenvalue": 1.99999} and update.result == {"steps": 10, "run": "runs/st"}
    failed = update_from_record({**RECORD, "state": "failed", "progress": None,
                                 "error": {"code": "job_crashed", "message": "killed by signal 9"}})
    assert (failed.state, failed.error_code, failed.error_message) == ("failed", "job_crashed", "killed by signal 9")
    assert failed.step is None  # no progress: keep what the panel had
    assert update.node is None and update_from_record({**RECORD, "node": "gpu-node-2"}).node == "gpu-node-2"
    assert update_from_event(JOB, "state", {**RECORD, "state": "running", "node": "gpu-node-2"}).node == "gpu-node-2"


def test_progress_and_event_translation_tolerate_odd_values() -> None:
    update = update_from_progress(JOB, {"step": 2, "total": None, "eta_s": True, "metrics": {"a": 1, "b": "x"}})
    assert (update.step, update.total, update.eta_s, update.metrics) == (2, None, None, {"a": 1.0})
    assert update_from_event(JOB, "done", {"result": {"out": "x"}}).result == {"out": "x"}
    failed = update_from_event(JOB, "failed", {"error": {"code": "job_failed", "message": "boom"}})
    assert (failed.state, failed.error_code, failed.error_message) == ("failed", "job_failed", "boom")
    assert update_from_event(JOB, "state", {"state": "exploded"}).state is None


def test_preview_bytes_become_a_file(tmp_path: Path) -> None:
    from dyntet_protocol import Event

    worker = Worker(queue.SimpleQueue())
    worker._settings = BackendSettings(workspace=str(tmp_path / "ws"), state_dir=str(tmp_path / "user"))
    event = Event("preview", 1, 0.0, "server", JOB, {"path": "runs/a/preview.png", "format": "png", "included": True},
                  buffers=[b"\x89PNG fake bytes"])
    path = worker._save_preview(JOB, event)
    assert path == tmp_path / "user" / "previews" / f"{JOB}.png" and path.read_bytes() == b"\x89PNG fake bytes"
    # Too big to travel: a local backend's file is used where it is.
    local = tmp_path / "ws" / "runs" / "a" / "preview.png"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"big")
    big = Event("preview", 2, 0.0, "server", JOB, {"path": "runs/a/preview.png", "included": False})
    assert worker._save_preview(JOB, big) == local


# -- settings ------------------------------------------------------------------------------------------------


def test_settings_validate_and_derive_endpoints() -> None:
    local = BackendSettings(port=6000)
    assert (local.request_endpoint, local.event_endpoint) == ("tcp://127.0.0.1:6000", "tcp://127.0.0.1:6001")
    remote = BackendSettings(mode="REMOTE", remote_address="tcp://gpu:5555")
    assert remote.request_endpoint == "tcp://gpu:5555"
    with pytest.raises(ValueError, match="port"):
        BackendSettings(port=80)
    with pytest.raises(ValueError, match="tcp://host"):
        BackendSettings(mode="REMOTE", remote_address="gpu:5555")


# -- local process -------------------------------------------------------------------------------------------


def test_base_command_explains_a_missing_python(tmp_path: Path) -> None:
    with pytest.raises(BackendSetupError, match="Backend Python"):
        base_command(str(tmp_path / "python3"))
    assert base_command(sys.executable) == [sys.executable, "-m", "dyntet.cli"]


def test_records_of_dead_or_foreign_processes_are_not_reused(tmp_path: Path) -> None:
    backend = LocalBackend(LocalConfig(sys.executable, tmp_path / "ws", state_dir=tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "backend.json").write_text(json.dumps({
        "pid": dead.pid, "request_endpoint": "tcp://127.0.0.1:5555", "event_endpoint": "tcp://127.0.0.1:5556",
        "workspace": str(tmp_path / "ws"), "command": [], "started": 0.0, "log_path": "",
    }))
    assert backend.existing() is None and not (tmp_path / "backend.json").exists()  # forgotten
    assert not is_backend_process(os.getpid())  # pytest is alive but is not `dyntet serve`
    assert not is_backend_process(0)


def test_a_started_process_is_stopped_and_forgotten(tmp_path: Path) -> None:
    """Start the real serve command on a free port and stop it (no client involved)."""
    port = free_port_pair()
    config = LocalConfig(sys.executable, tmp_path / "ws", f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}",
                         state_dir=tmp_path)
    backend = LocalBackend(config)
    record = backend.start()
    try:
        assert backend.started_here and backend.read_record() == record
        assert record.command[1:4] == ["-m", "dyntet.cli", "serve"]
        deadline = time.monotonic() + 10  # right after fork, /proc still shows the parent's command line
        while not is_backend_process(record.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert is_backend_process(record.pid)
        assert backend.existing() == record
    finally:
        backend.stop(timeout_s=20)
    assert not backend.started_here and backend.read_record() is None
    assert not is_backend_process(record.pid)
    assert "serve" in backend.log_path.read_text()
