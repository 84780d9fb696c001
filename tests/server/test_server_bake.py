"""``bake.exact`` over real loopback sockets: edited control curves → a ``bake`` job → the true DynTet
meshes in a bake folder, equal to the library's own decoding; malformed requests get typed errors."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from server_harness import raw_request, start_server

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("dyntet.train.api", "dyntet.rig.bake", "dyntet.data.synthetic")),
    reason="training or the rig is not part of this build")

RIGGED_RUN = Path(__file__).resolve().parents[1] / "blender" / "rigged_run.py"
NAMES = ["jawOpen", "eyeBlinkLeft"]


@pytest.fixture(scope="module")
def rigged(tmp_path_factory):
    """A server over a workspace with ``runs/synth`` (tiny, with named controls), built in a subprocess."""
    workspace = tmp_path_factory.mktemp("bake") / "ws"
    subprocess.run([sys.executable, str(RIGGED_RUN), str(workspace)], check=True, capture_output=True, timeout=600)
    server = start_server(workspace)
    try:
        yield server
    finally:
        server.stop()


def _curves(frames: int = 20) -> np.ndarray:
    t = np.linspace(0.0, 1.0, frames, dtype=np.float32)
    return np.stack([t, 1.0 - t], 1)


def test_bake_exact_regenerates_the_true_meshes(rigged):
    from dyntet.formats.bake import read_bake
    from dyntet.generate.api import open_run
    from dyntet.generate.geometry import FrozenGeometry
    from dyntet.rig.bake import order_controls
    from dyntet.rig.fit import ControlMap
    from dyntet.rig.meshes import bake_exact

    controls = _curves()
    with rigged.client(timeout_s=20) as client:
        assert client.server.job_kinds["bake"]["available"]
        job = client.call("bake.exact", run="runs/synth", names=NAMES, controls=controls, start=5, stop=15,
                          out="bakes/take")["job"]
        assert job["kind"] == "bake" and job["outputs"] == {"bake": "bakes/take"}
        done = client.wait(job["id"], timeout_s=300, poll_s=0.2)
        assert done["state"] == "done", done
        assert done["result"] == {"bake": "bakes/take", "num_frames": 10, "num_vertices": done["result"]["num_vertices"],
                                  "start": 5, "stop": 15}
        fetched = client.fetch_frames("bakes/take")
    vertices, manifest = read_bake(rigged.workspace / "bakes" / "take")
    np.testing.assert_array_equal(fetched, vertices)
    assert manifest["names"] == NAMES and (manifest["start"], manifest["stop"]) == (5, 15)

    loaded = open_run(rigged.workspace / "runs" / "synth", "cpu")
    control_map = ControlMap.load(rigged.workspace / "runs" / "synth" / "controls.npz")
    expected = bake_exact(FrozenGeometry.from_model(loaded.model), control_map,
                          order_controls(control_map, tuple(NAMES), controls),
                          loaded.config.model.geometry.expression_window)
    np.testing.assert_allclose(vertices, expected[5:15], atol=1e-6)  # the context rows fed the windows
    assert np.abs(vertices[-1] - vertices[0]).max() > 1e-4  # the edited jaw curve moved the mesh


@pytest.mark.parametrize("params, code, field", [
    ({"controls": [[0.0, 1.0]]}, "bad_request", "params.controls"),                      # a list, not an array
    ({"controls": np.zeros((4, 2), np.int32)}, "bad_request", "params.controls"),        # integer dtype
    ({"controls": np.zeros(4, np.float32)}, "bad_request", "params.controls"),           # one dimension
    ({"controls": np.full((4, 2), np.nan, np.float32)}, "bad_request", "params.controls"),
    ({"controls": np.zeros((4, 3), np.float32)}, "bad_request", "params.controls"),      # three columns, two names
    ({"names": "jawOpen"}, "bad_request", "params.names"),
    ({"names": ["jawOpen", "jawOpen"]}, "bad_request", "params.names"),
    ({"names": ["jawOpen", "tongueOut"]}, "bad_request", "params.names"),                # not a control of the run
    ({"start": "0"}, "bad_request", "params.start"),
    ({"start": 3, "stop": 3}, "bad_request", "params.stop"),
    ({"stop": 99}, "bad_request", "params.stop"),
    ({"run": "runs/nobody"}, "not_found", None),
    ({"out": "../elsewhere"}, "path_refused", "params.out"),
    ({"frames": "0:4"}, "bad_request", "params"),                                         # unknown field
])
def test_malformed_bake_requests_are_refused_with_the_field(rigged, params, code, field):
    request = {"run": "runs/synth", "names": NAMES, "controls": np.zeros((4, 2), np.float32), "out": "bakes/bad",
               **params}
    with rigged.client(timeout_s=10) as client:
        reply = raw_request(client, "bake.exact", request)
    assert not reply.ok and reply.error.code.value == code, reply.error
    if field is not None:
        assert reply.error.details["field"] == field, reply.error.details
    assert not (rigged.workspace / "bakes" / "bad").exists()


def test_a_bake_never_replaces_a_folder_of_other_work(rigged):
    (rigged.workspace / "sequences" / "keep").mkdir(parents=True, exist_ok=True)
    (rigged.workspace / "sequences" / "keep" / "notes.txt").write_text("mine")
    with rigged.client(timeout_s=10) as client:
        reply = raw_request(client, "bake.exact", {"run": "runs/synth", "names": NAMES, "controls": _curves(4),
                                                   "out": "sequences/keep"})
    assert not reply.ok and reply.error.code.value == "invalid_state"
    assert (rigged.workspace / "sequences" / "keep" / "notes.txt").read_text() == "mine"
