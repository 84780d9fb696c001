"""Footage for a remote backend: the worker uploads the video into the workspace before it submits the
job (cancel keeps what was sent, the next try resumes, a name taken by other content gets the file's
hash), and the Preprocess button does that without blocking the UI. Real ``dyntet serve`` on loopback.

The ``out`` dataset path is made a file on the server, so the server refuses the submitted job after
its video has arrived: the tests see the whole command path without running a heavy preprocessing job.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from blender_addon.control import state as st
from blender_addon.control.commands import BackendSettings, Connect, Submit
from blender_addon.control.transfer import upload_name
from blender_addon.control.worker import Worker
from dyntet_protocol import Client

bpy = pytest.importorskip("bpy")
pytest.importorskip("dyntet.server.app")

from test_blender_backend import prefs, remote_server, runtime, timed_operator, wait_for  # noqa: E402,F401


class RecordingClient(Client):
    """A real client that remembers what it submitted and lets a test act on upload progress."""

    submitted: list[tuple[str, dict[str, Any]]] = []
    on_progress: Callable[[int, int], None] | None = None

    def submit(self, kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        RecordingClient.submitted.append((kind, dict(params or {})))
        return super().submit(kind, params)

    def upload(self, *args: Any, progress: Any = None, **kwargs: Any) -> dict[str, Any]:
        def both(done: int, total: int) -> None:
            if RecordingClient.on_progress is not None:
                RecordingClient.on_progress(done, total)
            if progress is not None:
                progress(done, total)

        return super().upload(*args, progress=both, **kwargs)


class Session:
    """A worker on its own thread and the panel state its updates build, as Blender's timer would."""

    def __init__(self) -> None:
        self.updates: "queue.SimpleQueue[st.Update]" = queue.SimpleQueue()
        self.state = st.BackendState()
        self.transfers: list[st.Transfer] = []
        self.worker = Worker(self.updates, client_factory=lambda endpoint, keys: RecordingClient(
            endpoint, keys=keys, timeout_s=5.0, name="pytest"))
        self.worker.start()

    def wait(self, predicate: Callable[[], Any], what: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            while not self.updates.empty():
                update = self.updates.get()
                self.state.apply(update)
                if isinstance(update, st.Transfer):
                    self.transfers.append(update)
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; problem={self.state.problem} log={self.state.log[-5:]}")


def _video(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def test_upload_names_follow_the_servers_path_rules() -> None:
    from dyntet_protocol.schema import path_problem

    assert upload_name("take 1.mp4") == "take 1.mp4"
    assert upload_name("take 1.mp4", "3fa9c2d17e01ffff") == "take 1_3fa9c2d17e01.mp4"
    for odd in (".hidden.mov", "~x.mp4", "a:b.mp4", "c\\d.mov", "e\x01f.mp4", "...", "", "ümlaut clip.MOV"):
        name = upload_name(odd)
        assert name and path_problem(f"footage/{name}") is None, (odd, name)


def test_remote_preprocess_uploads_the_video_first_and_resumes_after_cancel(remote_server, tmp_path: Path) -> None:
    address, workspace = remote_server
    (workspace / "datasets").mkdir()
    (workspace / "datasets" / "clip").write_text("a file where the dataset would go: the job is refused")
    video = _video(tmp_path / "here" / "clip.mp4", 6 * 2**20 + 123)
    RecordingClient.submitted = []
    session = Session()
    try:
        session.worker.send(Connect(BackendSettings(mode="REMOTE", remote_address=address,
                                                    state_dir=str(tmp_path / "user"))))
        session.wait(lambda: session.state.connected, "the connection")
        submit = Submit("preprocess", {"out": "datasets/clip", "options": {}, "video": ""},
                        stage_files={"video": str(video)})

        calls = []

        def press_cancel(done: int, total: int) -> None:
            calls.append(done)
            if len(calls) == 2:  # the first chunk has been acknowledged
                session.worker.cancel_transfer()

        RecordingClient.on_progress = press_cancel
        session.worker.send(submit)
        session.wait(lambda: session.transfers and session.transfers[-1].stage == "cancelled", "the cancelled upload")
        assert RecordingClient.submitted == [], "no job without its video"
        assert not (workspace / "footage" / "clip.mp4").exists()
        assert not session.state.busy
        assert any("cancelled" in line for line in session.state.log)

        RecordingClient.on_progress = None
        session.transfers.clear()
        session.worker.send(submit)
        session.wait(lambda: RecordingClient.submitted, "the submitted job")
        assert RecordingClient.submitted == [("preprocess", {"out": "datasets/clip", "options": {},
                                                             "video": "footage/clip.mp4"})]
        assert (workspace / "footage" / "clip.mp4").read_bytes() == video.read_bytes()
        stages = [t.stage for t in session.transfers]
        assert stages[0] == "hashing" and "uploading" in stages and stages[-1] == "done"
        assert session.transfers[-1].done == video.stat().st_size
        session.wait(lambda: session.state.problem is not None, "the refusal of the job")
        assert "datasets/clip" in session.state.problem.message
        sent = [float(m) for line in session.state.log for m in re.findall(r"\(([0-9.]+) MiB sent\)", line)]
        assert sent and sent[-1] < 6.0, f"the second try continues where the first stopped: {sent}"

        other = _video(tmp_path / "elsewhere" / "clip.mp4", 1000)
        digest = hashlib.sha256(other.read_bytes()).hexdigest()
        session.worker.send(Submit("preprocess", {"out": "datasets/clip", "options": {}, "video": ""},
                                   stage_files={"video": str(other)}))
        session.wait(lambda: len(RecordingClient.submitted) == 2, "the second job")
        assert RecordingClient.submitted[-1][1]["video"] == f"footage/clip_{digest[:12]}.mp4"
        assert (workspace / "footage" / "clip.mp4").read_bytes() == video.read_bytes(), "nothing was replaced"
        assert (workspace / "footage" / f"clip_{digest[:12]}.mp4").read_bytes() == other.read_bytes()

        session.worker.send(submit)
        session.wait(lambda: len(RecordingClient.submitted) == 3, "the third job")
        session.wait(lambda: any("already on the backend" in line for line in session.state.log), "the log line")
        assert RecordingClient.submitted[-1][1]["video"] == "footage/clip.mp4"
    finally:
        RecordingClient.on_progress = None
        session.worker.stop()


def test_the_preprocess_button_uploads_to_a_remote_backend(prefs, remote_server, tmp_path: Path) -> None:
    address, workspace = remote_server
    (workspace / "datasets").mkdir()
    (workspace / "datasets" / "take").write_text("blocks the job: only the upload runs")
    video = _video(tmp_path / "take.mp4", 2 * 2**20 + 7)
    prefs.mode = "REMOTE"
    prefs.remote_address = address
    scene = bpy.context.scene
    scene.dyntet.name = "take"
    timed_operator(bpy.ops.dyntet.connect)
    wait_for(lambda: runtime().STATE.connected, 60, "the remote backend")
    scene.dyntet.footage = str(video)
    assert timed_operator(bpy.ops.dyntet.preprocess) == {"FINISHED"}
    wait_for(lambda: runtime().STATE.problem is not None and "datasets/take" in runtime().STATE.problem.message,
             60, "the upload and the refused job")
    assert (workspace / "footage" / "take.mp4").read_bytes() == video.read_bytes()
    transfer = runtime().STATE.transfer
    assert transfer is not None and transfer.stage == "done" and transfer.kind == "preprocess"
