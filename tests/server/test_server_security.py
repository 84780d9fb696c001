"""Bind policy (loopback unless CurveZMQ), key folders, and CurveZMQ handshakes with an allow-list."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

from dyntet.cli import main as cli_main
from dyntet.server.endpoints import EndpointError, check_bind_policy, events_endpoint_for, parse_endpoint
from dyntet.server.keystore import KeyStore
from dyntet_protocol import Client, ClientKeys, ErrorCode, EventListener, ProtocolError
from dyntet_protocol.keys import KeyFileError, generate_keypair, read_certificate, write_certificate

from server_harness import start_server, wait_for


@pytest.mark.parametrize("endpoint, local", [
    ("tcp://127.0.0.1:5555", True), ("tcp://127.0.0.1:*", True), ("tcp://127.1.2.3:80", True),
    ("tcp://localhost:5555", True), ("tcp://[::1]:5555", True), ("ipc:///tmp/dyntet.sock", True),
    ("inproc://x", True),
    ("tcp://*:5555", False), ("tcp://0.0.0.0:5555", False), ("tcp://[::]:5555", False),
    ("tcp://192.168.1.20:5555", False), ("tcp://10.0.0.1:*", False), ("tcp://eth0:5555", False),
    ("tcp://lo:5555", False), ("tcp://example.com:5555", False), ("tcp://[::ffff:8.8.8.8]:1", False),
])
def test_which_endpoints_are_local(endpoint, local):
    assert parse_endpoint(endpoint).is_local is local
    if local:
        check_bind_policy([endpoint], secure=False)
    else:
        with pytest.raises(EndpointError, match="CurveZMQ"):
            check_bind_policy([endpoint], secure=False)
        check_bind_policy([endpoint], secure=True)


@pytest.mark.parametrize("endpoint", ["", "127.0.0.1:5555", "tcp://127.0.0.1", "tcp://127.0.0.1:99999",
                                      "udp://127.0.0.1:5", "pgm://eth0;239.1.1.1:5555", "tcp://a;b:5",
                                      "tcp://127.0.0.1:0x10", "ipc://"])
def test_malformed_endpoints_are_refused(endpoint):
    with pytest.raises(EndpointError):
        parse_endpoint(endpoint)


def test_default_event_endpoint():
    assert events_endpoint_for("tcp://127.0.0.1:5555") == "tcp://127.0.0.1:5556"
    assert events_endpoint_for("tcp://127.0.0.1:*") == "tcp://127.0.0.1:*"
    assert events_endpoint_for("ipc:///tmp/d") == "ipc:///tmp/d-events"


def test_the_cli_refuses_a_network_bind_without_keys(tmp_path, capsys):
    code = cli_main(["serve", "--workspace", str(tmp_path / "ws"), "--bind", "tcp://0.0.0.0:5599", "--no-probe"])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to listen on tcp://0.0.0.0:5599" in err and "dyntet keys" in err
    assert not (tmp_path / "ws" / ".dyntet" / "server.json").exists()


def test_key_folder_lifecycle(tmp_path, capsys):
    keys = tmp_path / "keys"
    assert cli_main(["keys", "init", "--dir", str(keys)]) == 0
    assert cli_main(["keys", "init", "--dir", str(keys)]) == 2, "existing server keys are never replaced"
    assert cli_main(["keys", "add-client", "studio-1", "--dir", str(keys)]) == 0
    assert cli_main(["keys", "add-client", "studio-1", "--dir", str(keys)]) == 2
    assert cli_main(["keys", "add-client", "../evil", "--dir", str(keys)]) == 2
    outside_public, outside_secret = generate_keypair()
    write_certificate(tmp_path / "laptop.key", outside_public)
    assert cli_main(["keys", "authorize", "laptop", str(tmp_path / "laptop.key"), "--dir", str(keys)]) == 0
    assert cli_main(["keys", "list", "--dir", str(keys)]) == 0
    out = capsys.readouterr().out
    assert "client studio-1" in out and "client laptop" in out
    store = KeyStore(keys)
    assert set(store.authorized()) == {"studio-1", "laptop"} and store.authorized()["laptop"] == outside_public
    for secret_file in (store.server_secret_file, store.clients_dir / "studio-1.key_secret"):
        assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    assert read_certificate(store.server_public_file)[1] is None, "the public file holds no secret"
    assert cli_main(["keys", "revoke", "laptop", "--dir", str(keys)]) == 0
    assert set(store.authorized()) == {"studio-1"}


def test_malformed_key_files_are_refused(tmp_path):
    public, secret = generate_keypair()
    other_public, _ = generate_keypair()
    cases = {
        "empty.key": "",
        "short.key": 'public-key = "abc"\n',
        "mismatch.key_secret": f'public-key = "{other_public.decode()}"\nsecret-key = "{secret.decode()}"\n',
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(KeyFileError):
            read_certificate(tmp_path / name)
    with pytest.raises(KeyFileError):
        read_certificate(tmp_path / "missing.key")


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("secure")
    store = KeyStore(base / "keys")
    store.init()
    store.add_client("alice")
    store.add_client("bob")
    # a wildcard bind is a network bind: allowed only because keys are configured
    server = start_server(base / "ws", "--keys", str(store.root), bind="tcp://0.0.0.0:*", events="tcp://0.0.0.0:*")
    server.requests = "tcp://127.0.0.1:" + server.requests.rsplit(":", 1)[1]
    server.store = store
    yield server
    server.stop_keys = ClientKeys.load(store.server_public_file, store.clients_dir / "alice.key_secret")
    try:
        with Client(server.requests, keys=server.stop_keys, timeout_s=3) as client:
            client.shutdown()
        server.process.wait(20)
    finally:
        if server.alive():
            server.process.kill()


def _keys(server, name):
    return ClientKeys.load(server.store.server_public_file, server.store.clients_dir / f"{name}.key_secret")


def test_an_allowed_client_talks_curve_to_requests_and_events(secure_server):
    keys = _keys(secure_server, "alice")
    with Client(secure_server.requests, keys=keys, timeout_s=5) as client:
        assert client.server.raw["secure"] is True
        assert client.server.events_endpoint.startswith("tcp://127.0.0.1:")
        listener = EventListener(client.server.events_endpoint, keys=keys)
        wait_for(lambda: listener.poll(0.2) and listener.last_heartbeat is not None, 10, what="a heartbeat over CURVE")
        listener.close()


@pytest.mark.parametrize("who", ["no keys", "unknown key", "wrong server key"])
def test_clients_without_an_allowed_key_are_refused(secure_server, who):
    alice = _keys(secure_server, "alice")
    stranger_public, stranger_secret = generate_keypair()
    wrong_server, _ = generate_keypair()
    keys = {"no keys": None,
            "unknown key": ClientKeys(alice.server_public, stranger_public, stranger_secret),
            "wrong server key": ClientKeys(wrong_server, alice.public, alice.secret)}[who]
    client = Client(secure_server.requests, keys=keys, timeout_s=1.0, retries=0)
    with pytest.raises(ProtocolError) as err:
        client.connect()
    client.close()
    expected = {ErrorCode.AUTH_FAILED} if who != "wrong server key" else {ErrorCode.AUTH_FAILED, ErrorCode.TIMEOUT}
    assert err.value.code in expected, err.value


def test_revoking_a_client_takes_effect_without_a_restart(secure_server):
    keys = _keys(secure_server, "bob")
    with Client(secure_server.requests, keys=keys, timeout_s=5) as client:
        client.ping()
    secure_server.store.revoke("bob")
    time.sleep(1.2)  # the allow-list is re-read at most once a second
    client = Client(secure_server.requests, keys=keys, timeout_s=1.0, retries=0)
    with pytest.raises(ProtocolError) as err:
        client.connect()
    client.close()
    assert err.value.code == ErrorCode.AUTH_FAILED
    with Client(secure_server.requests, keys=_keys(secure_server, "alice"), timeout_s=5) as client:
        client.ping()


def test_serve_refuses_keys_without_a_server_key_pair(tmp_path):
    (tmp_path / "keys").mkdir()
    done = subprocess.run([sys.executable, "-m", "dyntet.server", "--workspace", str(tmp_path / "ws"),
                           "--bind", "tcp://127.0.0.1:*", "--keys", str(tmp_path / "keys"), "--no-probe"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "dyntet keys init" in done.stderr
