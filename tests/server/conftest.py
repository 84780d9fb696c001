"""Fixtures of the server tests: a workspace with a sequence folder, and running servers."""

from __future__ import annotations

import pytest

from server_harness import start_server, write_sequence_folder


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One server for a module's read-only tests, with ``sequences/demo`` in its workspace."""
    workspace = tmp_path_factory.mktemp("served") / "ws"
    vertices = write_sequence_folder(workspace / "sequences" / "demo")
    server = start_server(workspace)
    server.vertices = vertices
    yield server
    server.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A server of its own for a test that changes state (jobs, shutdown)."""
    servers = []

    def start(*extra, workspace=None, **kwargs):
        server = start_server(workspace or tmp_path / "ws", *extra, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
