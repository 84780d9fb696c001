"""Generation and export as server jobs, over real loopback sockets: a tiny avatar trained through the
server drives a sequence folder that reads back and equals the library's own output; the sequence exports
to glb (both rigs) and OBJ; bad parameters are refused at submit with typed errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from dyntet_protocol import EventListener, ProtocolError

from server_harness import start_server

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("dyntet.train.api", "dyntet.generate.api",
                                                      "dyntet.data.synthetic", "dyntet.export.gltf")),
    reason="training, generation or export is not part of this build")

FRAMES = "2:10"
"""Frames 2..9 of the training split: 8 frames, audio cut from 2/fps on."""
TEXTURE = 64


def _tiny_overrides() -> dict:
    """The training tests' tiny network (``tests/train/train_tiny.py``), loaded by path: that folder is not
    on ``sys.path`` when only the server tests run."""
    path = Path(__file__).resolve().parents[1] / "train" / "train_tiny.py"
    spec = importlib.util.spec_from_file_location("train_tiny_for_server_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.TINY)


def _add_audio(dataset: Path) -> float:
    """Give a synthetic dataset a 16 kHz mono ``audio.wav`` spanning its frames; returns its fps."""
    from dyntet.formats.dataset import Dataset, DatasetWriter
    from dyntet.formats.sequence import wav_bytes

    data = Dataset.open(dataset)
    seconds = data.tracking.pose.shape[0] / data.fps
    samples = 0.5 * np.sin(np.linspace(0.0, 440.0 * 2 * np.pi * seconds, int(round(seconds * 16000))))
    writer = DatasetWriter(dataset, data.size, data.fps)  # re-opens the folder: the manifest is written again
    writer.write_audio(wav_bytes(samples))
    writer.finish(data.tracking, data.face_model, data.manifest["source"])
    return float(data.fps)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A server whose workspace holds ``datasets/synth`` (with audio) and ``runs/synth``, trained by a job."""
    from dyntet.data.synthetic import SyntheticConfig, make_subject

    workspace = tmp_path_factory.mktemp("generate") / "ws"
    make_subject(workspace / "datasets" / "synth", SyntheticConfig(size=64, num_frames=24, seed=3))
    fps = _add_audio(workspace / "datasets" / "synth")
    server = start_server(workspace)
    try:
        with server.client(timeout_s=20) as client:
            job = client.train("datasets/synth", "runs/synth", preset="preview", overrides=_tiny_overrides(),
                               device="cpu")
            done = client.wait(job["id"], timeout_s=300, poll_s=0.3)
        assert done["state"] == "done", done
        server.fps = fps
        yield server
    finally:
        server.stop()


def test_generate_then_export_through_the_server(trained):
    from dyntet.export.glb import read_glb
    from dyntet.formats.sequence import read_sequence

    workspace = trained.workspace
    with trained.client(timeout_s=20) as client:
        assert client.server.job_kinds["generate"]["available"] and client.server.job_kinds["export"]["available"]
        listener = EventListener(client.server.events_endpoint)
        listener.subscribe_all_jobs()
        listener.poll(0.3)
        stages: set[str] = set()
        listener.on(lambda event: stages.add(event.data["stage"]), types=["progress"])
        job = client.submit("generate", {"run": "runs/synth", "drive": "train", "out": "sequences/synth_train",
                                         "frames": FRAMES, "texture_size": TEXTURE, "device": "cpu"})
        assert job["outputs"] == {"sequence": "sequences/synth_train"}
        assert job["params"]["pose"] == "driver"  # defaults filled in
        done = client.wait(job["id"], timeout_s=300, poll_s=0.3)
        assert done["state"] == "done", done
        listener.poll(0.3)
        exports = {
            "frames": client.submit("export", {"sequence": "sequences/synth_train", "out": "exports/head.glb"}),
            "pca": client.submit("export", {"sequence": "sequences/synth_train", "out": "exports/head_pca.glb",
                                            "rig": "pca", "targets": 2}),
            "obj": client.submit("export", {"sequence": "sequences/synth_train", "out": "exports/head_obj",
                                            "format": "obj"}),
        }
        finished = {name: client.wait(job["id"], timeout_s=300, poll_s=0.3) for name, job in exports.items()}
        listener.poll(0.3)
        listener.close()
        listed = {item["name"]: item for item in client.list_sequences()}
        served = client.fetch_frames("sequences/synth_train", 0, 8)

    assert {"geometry", "atlas", "bake", "write"} <= stages
    assert done["result"] == {"sequence": "sequences/synth_train", "num_frames": 8,
                              "num_vertices": done["result"]["num_vertices"], "num_faces": done["result"]["num_faces"],
                              "fps": trained.fps, "has_audio": True}
    seq = read_sequence(workspace / "sequences" / "synth_train")
    assert seq.num_frames == 8 and seq.num_vertices == done["result"]["num_vertices"] > 0
    assert seq.base_color.shape == (TEXTURE, TEXTURE, 3) and seq.source["frames"] == [2, 10]
    assert isinstance(seq.audio, Path)
    import wave

    with wave.open(str(seq.audio)) as audio:
        assert abs(audio.getnframes() / audio.getframerate() - 8 / trained.fps) < 1e-3
    assert listed["synth_train"]["complete"] and listed["synth_train"]["has_audio"]
    np.testing.assert_array_equal(served, np.asarray(seq.vertices))

    assert {name: record["state"] for name, record in finished.items()} == {"frames": "done", "pca": "done",
                                                                             "obj": "done"}, finished
    per_frame, pca, obj = finished["frames"]["result"], finished["pca"]["result"], finished["obj"]["result"]
    assert per_frame["format"] == "glb" and per_frame["num_targets"] == 8 and per_frame["pca"] is None
    document, _ = read_glb((workspace / "exports" / "head.glb").read_bytes())
    assert len(document["meshes"][0]["primitives"][0]["targets"]) == 8
    assert per_frame["size_bytes"] == (workspace / "exports" / "head.glb").stat().st_size
    assert pca["num_targets"] == 2 and set(pca["pca"]) == {"num_targets", "rms_mm", "max_mm", "explained"}
    document, _ = read_glb((workspace / "exports" / "head_pca.glb").read_bytes())
    assert len(document["meshes"][0]["primitives"][0]["targets"]) == 2
    assert obj == {"format": "obj", "path": "exports/head_obj", "num_files": 8}
    assert len(list((workspace / "exports" / "head_obj").glob("frame_*.obj"))) == 8


def test_the_job_writes_what_the_library_writes(trained, tmp_path):
    """Another person's dataset drives the avatar with the avatar's own head motion: the adapter passes the
    path, frames and pose through unchanged, so the same call in this process gives the same vertices and
    head poses (and the pose option matters: the driver's motion would differ)."""
    from dyntet.data.synthetic import SyntheticConfig, make_subject
    from dyntet.generate.api import GenerateConfig, generate
    from dyntet.generate.bake import BakeConfig
    from dyntet.generate.drive import DriveOptions, FrameRange
    from dyntet.formats.sequence import read_sequence

    workspace = trained.workspace
    make_subject(workspace / "datasets" / "other", SyntheticConfig(size=64, num_frames=16, seed=11))
    with trained.client(timeout_s=20) as client:
        job = client.submit("generate", {"run": "runs/synth", "drive": "datasets/other", "out": "sequences/other",
                                         "frames": "1:7", "pose": "target", "texture_size": TEXTURE,
                                         "device": "cpu"})
        done = client.wait(job["id"], timeout_s=300, poll_s=0.3)
    assert done["state"] == "done", done
    assert "driver" not in done["result"] and done["result"]["has_audio"] is False

    def here(pose: str):
        config = GenerateConfig(drive=str(workspace / "datasets" / "other"), bake=BakeConfig(size=TEXTURE),
                                drive_options=DriveOptions(frames=FrameRange(1, 7), pose=pose), device="cpu")
        return read_sequence(generate(workspace / "runs" / "synth", tmp_path / pose, config))

    there, same = read_sequence(workspace / "sequences" / "other"), here("target")
    assert there.num_frames == same.num_frames == 6 and there.source["retarget"] is not None
    np.testing.assert_allclose(np.asarray(there.vertices), np.asarray(same.vertices), atol=1e-6)
    np.testing.assert_allclose(there.head_pose, same.head_pose, atol=1e-6)
    assert np.abs(there.head_pose - here("driver").head_pose).max() > 1e-4


def _refused(client, kind: str, params: dict) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        client.submit(kind, params)
    return err.value


def test_bad_generate_and_export_params_are_refused_at_submit(trained):
    workspace = trained.workspace
    (workspace / "datasets" / "not_a_dataset").mkdir()
    (workspace / "exports_dir.glb").mkdir()
    (workspace / "full").mkdir()
    (workspace / "full" / "something.txt").write_text("keep me")
    (workspace / "sequences" / "fake").mkdir(parents=True)  # the submit checks look for its manifest only
    (workspace / "sequences" / "fake" / "manifest.json").write_text("{}")
    run, out = "runs/synth", "sequences/bad"
    generate_cases = {
        "an unknown drive": ({"drive": "tset"}, "not_found", "neither a split"),
        "a drive escaping the workspace": ({"drive": "../synth"}, "path_refused", "'..' component"),
        "an absolute drive": ({"drive": "/etc/passwd"}, "path_refused", "absolute path"),
        "a drive that is not a string": ({"drive": 3}, "bad_request", "expected 'train', 'test', 'all'"),
        "a folder that is no dataset": ({"drive": "datasets/not_a_dataset"}, "not_found", "no manifest.json"),
        "a missing run": ({"run": "runs/missing"}, "not_found", "runs/missing does not exist"),
        "a folder that is no run": ({"run": "datasets/synth"}, "not_found", "has no config.json"),
        "an output escaping the workspace": ({"out": "sequences/../../x"}, "path_refused", "'..' component"),
        "an output that is another folder": ({"out": "datasets/synth"}, "invalid_state", "not a sequence folder"),
        "an empty frame range": ({"frames": "5:5"}, "bad_request", "STOP must be greater"),
        "frames that are no range": ({"frames": "1-4"}, "bad_request", "params.params.frames"),
        "an unknown pose": ({"pose": "camera"}, "bad_request", "'driver', 'target'"),
        "a tiny texture": ({"texture_size": 16}, "bad_request", "params.params.texture_size"),
        "an unknown parameter": ({"video": "videos/x.mp4"}, "bad_request", "unknown field(s) 'video'"),
    }
    export_cases = {
        "a missing sequence": ({"sequence": "sequences/none"}, "not_found", "does not exist"),
        "a folder that is no sequence": ({"sequence": "datasets/not_a_dataset"}, "not_found", "no manifest.json"),
        "an unknown format": ({"format": "fbx"}, "bad_request", "'glb', 'obj'"),
        "a pca rig for OBJ": ({"format": "obj", "rig": "pca", "out": "exports/o"}, "bad_request", "OBJ has no"),
        "targets without the pca rig": ({"targets": 4}, "bad_request", "unless rig is 'pca'"),
        "a glb named otherwise": ({"out": "exports/head.gltf"}, "bad_request", "ending in .glb"),
        "a glb that is a folder": ({"out": "exports_dir.glb"}, "invalid_state", "is a folder"),
        "OBJ into a full folder": ({"format": "obj", "out": "full"}, "invalid_state", "not empty"),
        "an output escaping the workspace": ({"out": "../head.glb"}, "path_refused", "'..' component"),
        "zero targets": ({"rig": "pca", "targets": 0}, "bad_request", "params.params.targets"),
    }
    with trained.client(timeout_s=20) as client:
        seen = {}
        for name, (change, _, _) in generate_cases.items():
            error = _refused(client, "generate", {"run": run, "drive": "train", "out": out, **change})
            seen[f"generate: {name}"] = (error.code.value, error.message)
        for name, (change, _, _) in export_cases.items():
            error = _refused(client, "export", {"sequence": "sequences/fake", "out": "exports/x.glb", **change})
            seen[f"export: {name}"] = (error.code.value, error.message)
        assert client.jobs(states=["queued", "running"]) == []
    expected = {f"generate: {k}": v for k, v in generate_cases.items()}
    expected.update({f"export: {k}": v for k, v in export_cases.items()})
    for name, (_, code, words) in expected.items():
        assert seen[name][0] == code and words in seen[name][1], (name, seen[name])
    assert (workspace / "full" / "something.txt").read_text() == "keep me"
    assert not (workspace / "sequences" / "bad").exists()


def test_problems_found_by_the_job_fail_it_with_the_reason(trained):
    """A frame range past the clip's end and a 'video' that is not one pass the submit checks and fail in
    the job, with the library's message; the video's driver dataset is declared as an output up front."""
    workspace = trained.workspace
    (workspace / "videos").mkdir(exist_ok=True)
    (workspace / "videos" / "junk.mp4").write_bytes(b"not a video at all" * 64)
    with trained.client(timeout_s=20) as client:
        past = client.submit("generate", {"run": "runs/synth", "drive": "test", "out": "sequences/past",
                                          "frames": "0:99", "device": "cpu"})
        video = client.submit("generate", {"run": "runs/synth", "drive": "videos/junk.mp4", "out": "sequences/junk",
                                           "device": "cpu"})
        assert video["outputs"] == {"sequence": "sequences/junk", "driver": "sequences/junk.driver"}
        records = [client.wait(job["id"], timeout_s=300, poll_s=0.3) for job in (past, video)]
        assert client.ping() < 1.0
    assert [r["state"] for r in records] == ["failed", "failed"], records
    assert all(r["error"]["code"] == "job_failed" for r in records)
    assert "GenerateError" in records[0]["error"]["message"] and "outside" in records[0]["error"]["message"]
    assert "junk.mp4" in records[1]["error"]["message"]
    assert not (workspace / "sequences" / "past").exists() and not (workspace / "sequences" / "junk").exists()


def test_the_server_knows_the_splits_the_library_knows():
    from dyntet.generate import drive
    from dyntet.server.jobs import kinds

    assert kinds.SPLITS == drive.SPLITS


def test_an_export_stops_when_asked_and_leaves_no_file(tmp_path):
    """The exporters take no ``should_stop``: the adapter stops them at their next progress report."""
    from dyntet.export.synthetic import SyntheticHeadConfig, synthetic_sequence
    from dyntet.formats.sequence import write_sequence
    from dyntet.progress import Cancelled
    from dyntet.server.jobs.targets import export

    write_sequence(tmp_path / "seq", synthetic_sequence(SyntheticHeadConfig(num_frames=6, rings=12, segments=16,
                                                                            texture_size=64)))
    reports = []
    calls = iter([False, False, True])  # stop at the third progress report
    params = {"sequence": "seq", "format": "glb", "rig": "per-frame", "targets": None, "out": "head.glb",
              "head_pose": True, "textures": True}
    with pytest.raises(Cancelled):
        export(params, workspace=tmp_path, resume=False, progress=reports.append, should_stop=lambda: next(calls))
    assert len(reports) == 2 and reports[0].stage == "read"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]
    result = export({**params, "format": "obj", "out": "obj"}, workspace=tmp_path, resume=False,
                    progress=reports.append, should_stop=lambda: False)
    assert result == {"format": "obj", "path": "obj", "num_files": 6}
    manifest = json.loads((tmp_path / "seq" / "manifest.json").read_text())
    assert manifest["num_frames"] == 6
