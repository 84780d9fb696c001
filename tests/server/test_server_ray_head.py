"""``dyntet serve --cluster ray://HOST:PORT`` against a head started on its own with ``ray start --head``
(the studio's two commands, README "Scale out"), with token authentication on (as ``ray start`` turns it
on wherever ``~/.ray/auth_token`` exists):
a job runs there and finishes, ``dyntet cluster status --cluster auto`` finds the head and shows its node,
and an unreachable head, a wrong token, no token or the wrong kind of port fail at once with a sentence."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ray_head import NODE_IP, free_port, session_pids, start_ray_head, stop_ray_head
from server_harness import wait_for

pytest.importorskip("ray", reason="Ray is the cluster extra (pip install '.[cluster]')")

pytestmark = pytest.mark.slow

TOKEN_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


@pytest.fixture(scope="module")
def head():
    # A short folder: Ray's unix sockets live under it, and a socket path has at most 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="dtray-", dir="/tmp" if Path("/tmp").is_dir() else None))
    started = start_ray_head(folder, token=secrets.token_hex(16))
    try:
        yield started
    finally:
        left = stop_ray_head(started)
        shutil.rmtree(folder, ignore_errors=True)
        assert not left, f"Ray processes left after the stop: {left}"


@pytest.fixture
def client_env(head, monkeypatch, tmp_path):
    """This machine as a studio's server machine: the head's token in RAY_AUTH_TOKEN, RAY_AUTH_MODE unset
    (dyntet turns token mode on), a home of its own (no ~/.ray/auth_token from elsewhere)."""
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAY_AUTH_TOKEN", head.token)
    monkeypatch.setenv("RAY_TMPDIR", str(head.folder))  # where `auto` finds the head's address
    return monkeypatch


def _status(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dyntet.cli", "cluster", "status", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_a_job_runs_on_a_head_started_with_ray_start(head, client_env, fresh_server, tmp_path):
    workspace = tmp_path / "ws"
    server = fresh_server("--cluster", head.client_address, workspace=workspace)
    with server.client(timeout_s=20) as client:
        job = client.submit("selftest", {"run": "runs/h", "steps": 300, "step_s": 0.03})["id"]
        record = wait_for(lambda: (r := client.job(job))["state"] == "running" and r["node"] and r, 60,
                          interval_s=0.1, what="the job running on the head")
        status = _status("--cluster", "auto", "--workspace", str(workspace), "--json")
        assert status.returncode == 0, status.stderr
        done = client.wait(job, timeout_s=60)
    assert record["node"].endswith(f"({NODE_IP})") and record["pid"] != server.process.pid
    report = json.loads(status.stdout)
    assert report["address"] == "auto" and report["cpus"] == 2 and report["slots"] == 2
    assert [(n["node"].endswith(f"({NODE_IP})"), n["alive"], n["cpus"]) for n in report["nodes"]] == [(True, True, 2)]
    assert [(j["id"], j["node"]) for j in report["jobs"]] == [(job, record["node"])]
    assert done["state"] == "done" and done["attempts"] == 1, done
    assert done["result"]["steps"] == 300 and done["result"]["relative_error"] < 1e-6
    assert done["result"]["pid"] == record["pid"]


def test_unreachable_heads_and_refused_tokens_fail_at_once_with_what_to_do(head, client_env, tmp_path):
    def fails(address: str, **env: str) -> str:
        started = time.monotonic()
        result = _status("--cluster", address, env={**os.environ, **env})
        assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
        assert time.monotonic() - started < 20, "no long Ray timeout"
        return result.stderr

    down = fails(f"ray://127.0.0.1:{free_port()}")
    assert "cannot reach the Ray cluster" in down and "refused" in down and "ray start --head" in down
    wrong = fails(head.client_address, RAY_AUTH_TOKEN="not-the-token")
    assert "uses token authentication and it refused the token from $RAY_AUTH_TOKEN" in wrong
    assert "ray get-auth-token" in wrong
    none = fails(head.gcs_address, RAY_AUTH_TOKEN="")
    assert "requires a token and this machine has none" in none
    kind = fails(f"ray://127.0.0.1:{head.gcs_port}")
    assert "is not a Ray client port" in kind and f"--cluster 127.0.0.1:{head.gcs_port}" in kind


def test_addresses_and_token_sources_are_read_as_ray_reads_them(monkeypatch, tmp_path):
    from dyntet.server.jobs.ray_connect import RayAddress, token_source

    assert RayAddress.parse("ray://head.studio:10001") == RayAddress("client", "head.studio", 10001)
    assert RayAddress.parse("10.1.2.3:6379") == RayAddress("gcs", "10.1.2.3", 6379)
    assert RayAddress.parse("auto") == RayAddress("auto")
    for bad in ("ray://head", "head:", "head:70000", "ray://:10001"):
        with pytest.raises(ValueError, match="is not local, auto, ray://HOST:PORT or HOST:PORT"):
            RayAddress.parse(bad)
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert token_source() is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("abc")
    assert token_source() == str(tmp_path / ".ray" / "auth_token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="cannot be read"):
        token_source()
    monkeypatch.setenv("RAY_AUTH_TOKEN", "xyz")
    assert token_source() == "$RAY_AUTH_TOKEN"
