"""The add-on driving a real ``dyntet serve`` over loopback ZeroMQ, through its operators.

Timers never fire with ``bpy`` as a module, so :func:`wait_for` calls the add-on's timer function
(``runtime.drain``) itself, as Blender's event loop would every 0.1 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytest.importorskip("dyntet.server.app")

from blender_addon.control.commands import Submit  # noqa: E402
from dyntet_formats.sequence import read_sequence  # noqa: E402
from dyntet_formats.wav import wav_bytes  # noqa: E402
from blender_helpers import free_port_pair  # noqa: E402
from blender_helpers import ADDON_MODULE  # noqa: E402
from test_blender_import import TOLERANCE_M, expected_world, world_vertices  # noqa: E402
from test_blender_panels import draw  # noqa: E402

UI_BUDGET_S = 0.1
"""No operator may block Blender's UI for longer than this."""


def runtime():
    import blender_addon.runtime as module

    return module


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runtime().drain()
        if predicate():
            return
        time.sleep(0.05)
    state = runtime().STATE
    raise AssertionError(
        f"timed out after {timeout_s} s waiting for {what}; connection={state.connection} "
        f"problem={state.problem} jobs={ {k: (v.kind, v.state, v.step) for k, v in state.jobs.items()} } "
        f"log={state.log[-5:]}"
    )


def timed_operator(operator, **kwargs) -> set[str]:
    started = time.perf_counter()
    result = operator(**kwargs)
    elapsed = time.perf_counter() - started
    assert elapsed < UI_BUDGET_S, f"{operator} blocked the UI for {elapsed * 1000:.0f} ms"
    return result


def job_of(kind: str):
    return runtime().STATE.job_of_kind(kind)


@pytest.fixture
def prefs(addon, scene, tmp_path: Path):
    """Add-on preferences pointing at a fresh workspace and free ports; stops what the test started."""
    preferences = bpy.context.preferences.addons[ADDON_MODULE].preferences
    saved = {name: getattr(preferences, name) for name in ("mode", "python", "workspace", "port", "remote_address")}
    preferences.mode = "LOCAL"
    preferences.python = sys.executable
    preferences.workspace = str(tmp_path / "workspace")
    preferences.port = free_port_pair()
    yield preferences
    worker = runtime()._worker
    if worker is not None:
        worker.stop(stop_local=True, timeout_s=15)
        runtime()._worker = None
    for name, value in saved.items():
        setattr(preferences, name, value)


def _record(user_dir: Path) -> dict:
    return json.loads((user_dir / "backend.json").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def test_start_run_cancel_resume_reuse_and_stop(prefs, user_dir: Path) -> None:
    assert timed_operator(bpy.ops.dyntet.connect) == {"FINISHED"}
    wait_for(lambda: runtime().STATE.connected, 90, "the local backend to start and answer")
    state = runtime().STATE
    assert state.protocol == 1 and state.server_version
    assert "selftest" in state.job_kinds
    pid = state.local_pid
    assert pid > 0 and _record(user_dir)["pid"] == pid and _alive(pid)

    # A job with progress events, cancelled half-way and resumed from its checkpoint.
    runtime().send(Submit("selftest", {"run": "runs/selftest", "steps": 400, "step_s": 0.02, "checkpoint_every": 5}))
    wait_for(lambda: job_of("selftest") is not None and job_of("selftest").step >= 10, 60, "progress")
    job = job_of("selftest")
    assert job.total == 400 and "eigenvalue" in job.metrics and job.state == "running"
    assert state.phase == "busy"
    assert timed_operator(bpy.ops.dyntet.cancel, job_id=job.job_id) == {"FINISHED"}
    wait_for(lambda: job_of("selftest").state == "cancelled", 60, "the job to be cancelled")
    assert timed_operator(bpy.ops.dyntet.resume, job_id=job.job_id) == {"FINISHED"}
    wait_for(lambda: job_of("selftest").state == "done", 90, "the resumed job to finish")
    assert job_of("selftest").result["resumed_from"] > 0

    # Blender restarts (the worker goes away, the backend stays): the running backend is reused.
    runtime()._worker.stop(stop_local=False)
    runtime()._worker = None
    runtime().reset_for_tests()
    timed_operator(bpy.ops.dyntet.connect)
    wait_for(lambda: runtime().STATE.connected, 30, "reconnection")
    assert runtime().STATE.local_pid == pid
    assert any("reusing" in line for line in runtime().STATE.log)

    assert timed_operator(bpy.ops.dyntet.stop_backend) == {"FINISHED"}
    wait_for(lambda: runtime().STATE.connection == "disconnected" and runtime().STATE.local_pid == 0, 60,
             "the backend to stop")
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
    assert not (user_dir / "backend.json").exists()


def test_backend_killed_mid_job(prefs, user_dir: Path) -> None:
    """kill -9 of the backend: the panel shows the failure, reconnecting starts a new backend, the job
    shows as interrupted and resumes; nothing is imported half-way."""
    objects_before = len(bpy.data.objects)
    timed_operator(bpy.ops.dyntet.connect)
    wait_for(lambda: runtime().STATE.connected, 90, "the local backend")
    runtime().send(Submit("selftest", {"run": "runs/killed", "steps": 600, "step_s": 0.02, "checkpoint_every": 5}))
    wait_for(lambda: job_of("selftest") is not None and job_of("selftest").step >= 10, 60, "progress")
    job_id = job_of("selftest").job_id
    pid = runtime().STATE.local_pid
    os.kill(pid, signal.SIGKILL)

    wait_for(lambda: runtime().STATE.connection == "lost", 30, "the loss to be noticed")
    assert runtime().STATE.phase == "failed"
    panel = draw("DYNTET_PT_backend")
    assert "dyntet.connect" in panel.operators()
    assert any(i.container.is_alert and i.kwargs["text"] == "Connection lost" for i in panel.items("label"))
    assert len(bpy.data.objects) == objects_before

    timed_operator(bpy.ops.dyntet.connect)
    wait_for(lambda: runtime().STATE.connected, 90, "a new backend")
    assert runtime().STATE.local_pid not in (0, pid)
    wait_for(lambda: runtime().STATE.jobs[job_id].state == "interrupted", 30, "the job to show as interrupted")
    assert "Resume" in runtime().STATE.problem.hint
    timed_operator(bpy.ops.dyntet.resume, job_id=job_id)
    wait_for(lambda: runtime().STATE.jobs[job_id].state == "done", 120, "the resumed job")
    assert runtime().STATE.jobs[job_id].result["resumed_from"] >= 5
    assert len(bpy.data.objects) == objects_before


@pytest.fixture
def remote_server(tmp_path: Path):
    """A backend started the way a studio would on another machine (here on loopback), serving a
    workspace that already holds a sequence folder."""
    from blender_helpers import serve, write_test_sequence

    workspace = tmp_path / "remote_workspace"
    write_test_sequence(workspace / "sequences" / "head")
    with serve(workspace, tmp_path / "remote.log") as address:
        yield address, workspace


def test_import_a_sequence_from_a_remote_backend(prefs, remote_server, user_dir: Path) -> None:
    address, workspace = remote_server
    prefs.mode = "REMOTE"
    prefs.remote_address = address
    scene = bpy.context.scene
    timed_operator(bpy.ops.dyntet.connect)
    wait_for(lambda: runtime().STATE.connected, 60, "the remote backend")
    wait_for(lambda: "head" in runtime().STATE.listing.sequences, 10, "the sequence listing")
    assert runtime().STATE.local_pid == 0  # nothing was started here

    timed_operator(bpy.ops.dyntet.import_backend_sequence, name="head")
    wait_for(lambda: any(o.type == "MESH" for o in scene.objects), 60, "the fetched sequence to be imported")
    obj = next(o for o in scene.objects if o.type == "MESH")
    folder = Path(obj["dyntet_sequence"])
    assert folder.is_relative_to(user_dir) and folder != workspace / "sequences" / "head"  # came over the wire

    seq = read_sequence(workspace / "sequences" / "head")
    for n in (0, 4, 11):
        scene.frame_set(scene.frame_start + n)
        error = np.abs(world_vertices(obj) - expected_world(seq.frame(n), seq.head_pose[n])).max()
        assert error <= TOLERANCE_M, (n, error)
    nodes = obj.data.materials[0].node_tree.nodes
    assert nodes["Base Color"].image.colorspace_settings.name == "sRGB"
    assert nodes["ORM"].image.colorspace_settings.name == "Non-Color"
    assert scene.world is not None
    assert [s.type for s in scene.sequence_editor.strips] == ["SOUND"]


def test_local_mode_joins_the_backend_already_serving_the_workspace(prefs, remote_server) -> None:
    """A backend started from a terminal on another port: Connect finds it through the workspace's
    ``.dyntet/server.json`` instead of starting a second one (which the workspace lock would refuse),
    and imports read the workspace directly."""
    address, workspace = remote_server
    prefs.workspace = str(workspace)
    scene = bpy.context.scene
    timed_operator(bpy.ops.dyntet.connect)
    wait_for(lambda: runtime().STATE.connected, 60, "the running backend")
    assert runtime().STATE.address == address and runtime().STATE.local_pid == 0
    timed_operator(bpy.ops.dyntet.import_backend_sequence, name="head")
    wait_for(lambda: any(o.type == "MESH" for o in scene.objects), 60, "the import")
    obj = next(o for o in scene.objects if o.type == "MESH")
    assert Path(obj["dyntet_sequence"]) == (workspace / "sequences" / "head").resolve()


def test_a_missing_backend_python_says_what_to_do(prefs, tmp_path: Path) -> None:
    prefs.python = str(tmp_path / "no" / "python")
    timed_operator(bpy.ops.dyntet.connect)
    wait_for(lambda: runtime().STATE.problem is not None, 10, "the problem report")
    assert "Backend Python" in runtime().STATE.problem.message
    assert runtime().STATE.connection != "connected"


def test_a_backend_that_exits_at_once_is_reported(prefs, tmp_path: Path) -> None:
    """A Python without dyntet: the process exits, the panel says why (from its log) and what to do."""
    fake = tmp_path / "python_without_dyntet"
    fake.write_text("#!/bin/sh\necho \"No module named dyntet\" >&2\nexit 1\n")
    fake.chmod(0o755)
    prefs.python = str(fake)
    timed_operator(bpy.ops.dyntet.connect)
    wait_for(lambda: runtime().STATE.connection == "lost", 30, "the failed start to be reported")
    problem = runtime().STATE.problem
    assert "exited with code 1" in problem.message and "Backend Python" in problem.hint
    assert runtime().STATE.local_exit_code == 1


def _synthetic_dataset_with_audio(folder: Path) -> float:
    """The synthetic subject (it has no audio) given a 16 kHz ``audio.wav`` by the dataset writer, so the
    import's sound-strip path runs; returns its fps."""
    from dyntet.formats.dataset import Dataset, DatasetWriter
    from dyntet.data.synthetic import SyntheticConfig, make_subject
    from dyntet.formats.sequence import wav_bytes

    make_subject(folder, SyntheticConfig(num_frames=24, size=128))
    data = Dataset.open(folder)
    seconds = data.tracking.pose.shape[0] / data.fps
    samples = 0.5 * np.sin(np.linspace(0.0, 220.0 * 2 * np.pi * seconds, int(round(seconds * 16000))))
    writer = DatasetWriter(folder, data.size, data.fps)  # re-opens the folder: finish() writes the manifest again
    writer.write_audio(wav_bytes(samples))
    writer.finish(data.tracking, data.face_model, data.manifest["source"])
    return data.fps


@pytest.mark.slow
def test_train_generate_and_import_the_synthetic_subject(prefs, tmp_path: Path) -> None:
    """The artist's path end to end: a dataset in the workspace → Train → Generate & Import (frames 2–9 of
    the training clip); the imported head then matches the generated sequence frame by frame, with its
    material, World, timing and the driver's audio as a sound strip."""
    for module in ("dyntet.train.api", "dyntet.generate.api", "dyntet.data.synthetic"):
        pytest.importorskip(module)
    workspace = Path(prefs.workspace)
    fps = _synthetic_dataset_with_audio(workspace / "datasets" / "synth")
    timed_operator(bpy.ops.dyntet.connect)
    wait_for(lambda: runtime().STATE.connected, 90, "the local backend")
    assert {"train", "generate"} <= set(runtime().STATE.job_kinds)  # this build has both: they must be offered

    settings = bpy.context.scene.dyntet
    settings.name, settings.preset, settings.iterations, settings.device = "synth", "preview", 10, "cpu"
    assert timed_operator(bpy.ops.dyntet.train) == {"FINISHED"}
    wait_for(lambda: job_of("train") is not None and job_of("train").state in st_terminal(), 1800, "training")
    assert job_of("train").state == "done", job_of("train").error_message

    settings.drive, settings.first_frame, settings.last_frame = "train", 2, 9
    assert timed_operator(bpy.ops.dyntet.generate) == {"FINISHED"}
    scene = bpy.context.scene
    wait_for(lambda: any(o.type == "MESH" for o in scene.objects) or
             (job_of("generate") is not None and job_of("generate").state in ("failed", "cancelled")),
             1800, "generation and import")
    generate = job_of("generate")
    assert generate.state == "done", generate.error_message
    assert generate.result["sequence"] == "sequences/synth_train" and generate.result["num_frames"] == 8
    obj = next(o for o in scene.objects if o.type == "MESH")
    seq = read_sequence(workspace / "sequences" / "synth_train")
    assert seq.num_frames == 8 and Path(obj["dyntet_sequence"]) == (workspace / "sequences" / "synth_train").resolve()
    assert (scene.render.fps, scene.frame_start, scene.frame_end) == (round(fps), 1, 8)
    for n in (0, 3, 5, 7):
        scene.frame_set(scene.frame_start + n)
        error = np.abs(world_vertices(obj) - expected_world(seq.frame(n), seq.head_pose[n])).max()
        assert error <= TOLERANCE_M, (n, error)

    nodes = obj.data.materials[0].node_tree.nodes
    assert nodes["Base Color"].image.colorspace_settings.name == "sRGB"
    assert nodes["ORM"].image.colorspace_settings.name == "Non-Color"
    environment = next(n for n in scene.world.node_tree.nodes if n.bl_idname == "ShaderNodeTexEnvironment")
    assert environment.image.colorspace_settings.name == "Linear Rec.709"
    strips = list(scene.sequence_editor.strips)
    assert [s.type for s in strips] == ["SOUND"] and strips[0].frame_start == scene.frame_start
    assert abs(strips[0].frame_final_duration - seq.num_frames) <= 1  # the audio under frames 2–9 only
    assert Path(bpy.path.abspath(strips[0].sound.filepath)).name == "audio.wav"

    # Drive from audio: a voice recording elsewhere on disk is staged into the workspace, drives the avatar
    # (training fitted its audio model: the footage has sound) and comes back with the speech as a strip.
    speech = tmp_path / "line.wav"
    t = np.arange(int(1.2 * 16000)) / 16000
    samples = 0.3 * np.clip(np.sin(2 * np.pi * 3 * t), 0, None) * np.sign(np.sin(2 * np.pi * 130 * t))
    speech.write_bytes(wav_bytes(samples))
    first_job = generate.job_id
    settings.drive, settings.drive_audio, settings.first_frame, settings.last_frame = "audio", str(speech), 0, 0
    assert timed_operator(bpy.ops.dyntet.generate) == {"FINISHED"}
    wait_for(lambda: sum(o.type == "MESH" for o in scene.objects) == 2 or
             (job_of("generate").job_id != first_job and job_of("generate").state in ("failed", "cancelled")),
             1800, "audio-driven generation and import")
    spoken = job_of("generate")
    assert spoken.state == "done", spoken.error_message
    assert spoken.result["sequence"] == "sequences/synth_line" and spoken.result["num_frames"] == round(1.2 * fps)
    seq = read_sequence(workspace / "sequences" / "synth_line")
    assert seq.manifest["source"]["drive"]["kind"] == "audio"
    obj = next(o for o in scene.objects if o.type == "MESH" and o.get("dyntet_sequence", "").endswith("synth_line"))
    for n in (0, seq.num_frames - 1):
        scene.frame_set(scene.frame_start + n)
        error = np.abs(world_vertices(obj) - expected_world(seq.frame(n), seq.head_pose[n])).max()
        assert error <= TOLERANCE_M, (n, error)
    voice = [s for s in scene.sequence_editor.strips
             if s.type == "SOUND" and "synth_line" in bpy.path.abspath(s.sound.filepath)]
    assert len(voice) == 1 and voice[0].frame_start == scene.frame_start
    assert abs(voice[0].frame_final_duration - seq.num_frames) <= 1  # the speech, in sync with the frames


def test_generate_requests_follow_the_servers_job_kind(tmp_path: Path) -> None:
    """The Generate panel's settings become the ``generate`` parameters the server validates
    (``docs/protocol.md``): inclusive panel frames → half-open ``START:STOP``; a video drive is staged."""
    from blender_addon.control.commands import generate_request
    from dyntet.server.jobs.kinds import JOB_KINDS
    from dyntet.server.workspace import Workspace

    split = generate_request("anna", "test", first_frame=2, last_frame=9)
    assert split.params == {"run": "runs/anna", "drive": "test", "out": "sequences/anna_test", "frames": "2:10"}
    assert split.then_import == "sequences/anna_test" and split.stage_files == {}
    assert generate_request("anna", "all", first_frame=5).params["frames"] == "5:"
    assert "frames" not in generate_request("anna", "train").params
    local = generate_request("anna", "video", video="/footage/Take 2.mp4")
    assert local.stage_files == {"drive": "/footage/Take 2.mp4"} and local.params["out"] == "sequences/anna_Take_2"
    remote = generate_request("anna", "video", video="videos/bob.mp4", local=False)
    assert remote.params["drive"] == "videos/bob.mp4" and remote.stage_files == {}
    voice = generate_request("anna", "audio", audio="/takes/line 1.wav")
    assert voice.stage_files == {"drive": "/takes/line 1.wav"} and voice.params["audio_only"] is True
    assert voice.params["out"] == "sequences/anna_line_1"
    for bad in ({"drive": "video"}, {"drive": "audio"}, {"drive": "camera"},
                {"drive": "test", "first_frame": 9, "last_frame": 2}):
        with pytest.raises(ValueError):
            generate_request("anna", **bad)

    ws = Workspace(tmp_path / "ws")
    (ws.root / "runs" / "anna" / "checkpoints").mkdir(parents=True)
    for name in ("config.json", "checkpoints/last.pt"):
        (ws.root / "runs" / "anna" / name).write_text("{}")
    params, outputs = JOB_KINDS["generate"].check(split.params, ws)
    assert params["frames"] == "2:10" and outputs == {"sequence": "sequences/anna_test"}
    (ws.root / "videos").mkdir()
    (ws.root / "videos" / "bob.mp4").write_bytes(b"x")
    _, outputs = JOB_KINDS["generate"].check(remote.params, ws)
    assert outputs == {"sequence": "sequences/anna_bob", "driver": "sequences/anna_bob.driver"}
    remote_voice = generate_request("anna", "audio", audio="videos/bob.mp4", local=False)  # a video's sound track
    params, outputs = JOB_KINDS["generate"].check(remote_voice.params, ws)
    assert params["audio_only"] is True and outputs == {"sequence": "sequences/anna_bob"}  # no face tracked


def st_terminal() -> tuple[str, ...]:
    from blender_addon.control.state import TERMINAL

    return TERMINAL


QUIT_SCRIPT = """
import sys, time, bpy, addon_utils
sys.path.insert(0, {repo!r})
addon_utils.enable({module!r}, default_set=True)
prefs = bpy.context.preferences.addons[{module!r}].preferences
prefs.python, prefs.workspace, prefs.port, prefs.stop_on_quit = sys.executable, {workspace!r}, {port}, {stop}
bpy.ops.dyntet.connect()
from blender_addon import runtime
deadline = time.monotonic() + 90
while not runtime.STATE.connected and time.monotonic() < deadline:
    runtime.drain()
    time.sleep(0.05)
print("PID", runtime.STATE.local_pid, flush=True)
"""


@pytest.mark.parametrize("stop_on_quit", [True, False])
def test_quitting_blender_stops_the_backend_it_started(tmp_path: Path, stop_on_quit: bool) -> None:
    from blender_helpers import REPO

    script = QUIT_SCRIPT.format(repo=str(REPO), module=ADDON_MODULE, workspace=str(tmp_path / "ws"),
                                port=free_port_pair(), stop=stop_on_quit)
    env = {**os.environ, "DYNTET_BLENDER_USER_DIR": str(tmp_path / "user")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    pid = int(next(line.split()[1] for line in run.stdout.splitlines() if line.startswith("PID")))
    assert pid > 0, run.stdout + run.stderr
    deadline = time.monotonic() + (15 if stop_on_quit else 2)
    while _alive(pid) == stop_on_quit and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert _alive(pid) != stop_on_quit
        record = tmp_path / "user" / "backend.json"
        assert record.exists() != stop_on_quit  # kept for the next Blender to reuse
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
