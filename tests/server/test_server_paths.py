"""Every path in a request stays inside the workspace: ≥ 20 escape variants, refused locally by the
confinement rules and over the wire by a running server."""

from __future__ import annotations

import os

import pytest

from dyntet_protocol import ErrorCode, ProtocolError
from dyntet_protocol.schema import path_problem
from dyntet.server.workspace import Workspace

from server_harness import raw_request, start_server

# Each would name something outside the workspace (or the server's hidden state) if accepted.
ESCAPES = [
    "..",
    "../",
    "../secret.txt",
    "../../etc/passwd",
    "sequences/../../secret.txt",
    "sequences/demo/../../../secret.txt",
    "./../secret.txt",
    "/etc/passwd",
    "//etc/passwd",
    "\\etc\\passwd",
    "..\\secret.txt",
    "sequences\\..\\..\\secret.txt",
    "C:/Windows/win.ini",
    "C:secret.txt",
    "~/secret.txt",
    "~root/.ssh/id_rsa",
    ".dyntet/server.json",
    ".dyntet/jobs",
    "sequences/.hidden",
    "sequences//demo/../../..",
    "sequences/demo/",
    "sequences/./demo",
    "sequences/demo\x00.npy",
    "sequences/\n../secret.txt",
    "a" * 2000,
    "out_link/secret.txt",          # symlink to a folder outside
    "out_link",
    "file_link",                    # symlink to a file outside
    "state_link/server.json",       # symlink into .dyntet
    "sequences/demo/up/secret.txt", # symlink to .. inside a subfolder
    "loop_link/x",                  # a symlink loop
]


@pytest.fixture(scope="module")
def trap(tmp_path_factory):
    """A workspace inside a folder holding a secret, with symlinks that point out of it."""
    base = tmp_path_factory.mktemp("trap")
    (base / "secret.txt").write_text("must never be served")
    ws = base / "ws"
    (ws / "sequences" / "demo").mkdir(parents=True)
    (ws / "sequences" / "demo" / "ok.txt").write_text("fine")
    (ws / "sequences" / ".hidden").write_text("hidden")
    os.symlink(base, ws / "out_link")
    os.symlink(base / "secret.txt", ws / "file_link")
    (ws / ".dyntet").mkdir()
    os.symlink(ws / ".dyntet", ws / "state_link")
    os.symlink(base, ws / "sequences" / "demo" / "up")
    os.symlink(ws / "loop_link", ws / "loop_link")
    os.symlink(ws / "sequences" / "demo" / "ok.txt", ws / "inner_link")  # stays inside: allowed
    return ws


def test_there_are_at_least_20_variants():
    assert len(ESCAPES) >= 20


@pytest.mark.parametrize("path", ESCAPES)
def test_workspace_refuses(trap, path):
    ws = Workspace(trap)
    with pytest.raises(ProtocolError) as err:
        ws.resolve(path)
    assert err.value.code == ErrorCode.PATH_REFUSED, err.value


def test_syntax_rules_alone_refuse_every_non_symlink_variant():
    symlinked = {"out_link/secret.txt", "out_link", "file_link", "state_link/server.json",
                 "sequences/demo/up/secret.txt", "loop_link/x"}
    for path in ESCAPES:
        if path not in symlinked:
            assert path_problem(path) is not None, path


def test_paths_inside_are_accepted(trap):
    ws = Workspace(trap)
    assert ws.resolve("sequences/demo/ok.txt").read_text() == "fine"
    assert ws.resolve("inner_link").read_text() == "fine"  # a symlink that stays inside
    assert ws.resolve("sequences/demo", kind="dir").is_dir()
    with pytest.raises(ProtocolError) as err:
        ws.resolve("sequences/missing.txt")
    assert err.value.code == ErrorCode.NOT_FOUND
    # look-alikes that are just odd names inside the workspace are not escapes
    for odd in ("%2e%2e/secret.txt", "a..b", "sequences/demo/ok.txt "):
        with pytest.raises(ProtocolError) as err:
            ws.resolve(odd)
        assert err.value.code == ErrorCode.NOT_FOUND, odd


def test_the_server_refuses_every_variant_on_every_path_field(trap):
    server = start_server(trap)
    try:
        with server.client() as client:
            for path in ESCAPES:
                for request_type, params in (
                    ("fetch.file", {"path": path}),
                    ("fetch.frames", {"path": path, "start": 0, "stop": 1}),
                    ("list.files", {"path": path}),
                    ("job.submit", {"kind": "selftest", "params": {"run": path}}),
                    ("upload.begin", {"path": path, "size": 4, "sha256": "0" * 64}),
                ):
                    reply = raw_request(client, request_type, params)
                    assert not reply.ok, (request_type, path)
                    assert reply.error.code in (ErrorCode.PATH_REFUSED,
                                                ErrorCode.TOO_LARGE), (request_type, path, reply.error)
                    assert "must never be served" not in repr(reply.error.to_wire())
            assert client.jobs() == [], "no job may have been created by a refused path"
            assert not (trap / ".dyntet" / "uploads").exists(), "no upload may have begun on a refused path"
            assert client.fetch_bytes("inner_link") == b"fine"
    finally:
        server.stop()

