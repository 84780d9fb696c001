"""Connecting the server to a Ray cluster, failing in seconds with a sentence that says what to do.

Why this is more than ``ray.init(address)``: since Ray 2.52 a head may require a token (``RAY_AUTH_MODE=token``),
and a ``ray start --head`` turns it on by itself when the machine holds ``~/.ray/auth_token`` (which any local
``ray.init()`` of Ray ≥ 2.59 writes). Ray sends a token only when this process runs in token mode, and turns
that on by itself only for ``address="auto"``; for ``ray://HOST:PORT`` and ``HOST:PORT`` a head with tokens
then answers *unauthenticated*, which Ray's client reports after 30 s as "connection timeout" and its
GCS connection after 20 s as "failed to connect". So before ``ray.init``: token mode is switched on when a
token is at hand (sending one to a head without tokens is harmless), the port is tried over TCP (down
or wrong host: at once), and one gRPC ping is sent the way Ray's client does (wrong token, no token,
wrong kind of port: at once).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ray
from ray.exceptions import RayError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
PING_TIMEOUT_S = 5.0
CLIENT_ATTEMPTS = 3
AUTH_MODE_VAR = "RAY_AUTH_MODE"
TOKEN_VAR = "RAY_AUTH_TOKEN"
TOKEN_PATH_VAR = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_PATH = Path("~/.ray/auth_token")
HOW_TO_START = ("start the head with `ray start --head --port 6379 --ray-client-server-port 10001` "
                "(README, Scale out)")


@dataclass(frozen=True)
class RayAddress:
    """A ``--cluster`` value: ``auto``, ``ray://HOST:PORT`` (Ray client server) or ``HOST:PORT`` (the GCS)."""

    kind: Literal["auto", "client", "gcs"]
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, address: str) -> RayAddress:
        if address == "auto":
            return cls("auto")
        kind: Literal["client", "gcs"] = "client" if address.startswith("ray://") else "gcs"
        rest = address.removeprefix("ray://")
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--cluster {address!r} is not local, auto, ray://HOST:PORT or HOST:PORT")
        return cls(kind, host.strip("[]"), int(port))


def token_source() -> str | None:
    """Where Ray would read a token from (its order: the variable, the path variable, the default file),
    or None. Raises ValueError for a ``RAY_AUTH_TOKEN_PATH`` that names no readable token, which Ray
    treats as fatal (it aborts the process)."""
    if os.environ.get(TOKEN_VAR, "").strip():
        return f"${TOKEN_VAR}"
    named = os.environ.get(TOKEN_PATH_VAR)
    if named:
        try:
            if Path(named).expanduser().read_text().strip():
                return named
        except OSError as exc:
            raise ValueError(f"{TOKEN_PATH_VAR}={named} cannot be read ({exc.strerror}): point it at the "
                             "cluster's token file or unset it") from None
        raise ValueError(f"{TOKEN_PATH_VAR}={named} is empty: put the cluster's token in it or unset it")
    default = DEFAULT_TOKEN_PATH.expanduser()
    return str(default) if default.is_file() and default.stat().st_size > 0 else None


def use_token_if_available() -> str | None:
    """Switch this process to token mode when a token is at hand and ``RAY_AUTH_MODE`` is unset (what
    Ray itself does only for ``auto``); the token's source, or None when no token will be sent."""
    mode = os.environ.get(AUTH_MODE_VAR)
    if mode is not None:
        return token_source() if mode.lower() == "token" else None
    source = token_source()
    if source is not None:
        os.environ[AUTH_MODE_VAR] = "token"
        from ray._raylet import Config  # Ray reads its mode once at import; this re-reads it (as Ray does)

        Config.initialize("")
    return source


def check_reachable(target: RayAddress, address: str) -> None:
    """A TCP connection to the port, so a head that is down or a wrong host fails at once."""
    try:
        with socket.create_connection((target.host, target.port), timeout=CONNECT_TIMEOUT_S):
            pass
    except socket.timeout:
        reason = f"no answer within {CONNECT_TIMEOUT_S:g} s"
    except socket.gaierror as exc:
        reason = f"unknown host ({exc.strerror})"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    else:
        return
    port_kind = "Ray client server port" if target.kind == "client" else "head's GCS port"
    raise ValueError(f"cannot reach the Ray cluster at {address}: {target.host}:{target.port} ({port_kind}): "
                     f"{reason}. Check the address, or {HOW_TO_START}")


def check_answers(target: RayAddress, address: str, token: str | None) -> None:
    """One gRPC ping with the credentials ``ray.init`` will use: refused tokens and ports that are not
    the named kind of Ray service are told apart here instead of ending in Ray's long timeouts."""
    try:
        import grpc
        from ray._private.grpc_utils import init_grpc_channel  # the channel Ray's client uses (token included)
    except ImportError:
        if target.kind == "client":
            raise ValueError(f"--cluster {address} talks to Ray's client server, which needs gRPC: "
                             "pip install 'dyntet[cluster]' (or 'ray[client]==2.60.0')") from None
        return  # a GCS connection needs no Python gRPC: ray.init reports what goes wrong, only slower
    channel = init_grpc_channel(f"{target.host}:{target.port}", options=[], asynchronous=False)
    try:
        if target.kind == "client":
            from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc

            ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo(
                ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING), timeout=PING_TIMEOUT_S)
        else:
            from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=PING_TIMEOUT_S)
    except grpc.RpcError as exc:
        raise ValueError(_ping_failure(exc.code(), target, address, token)) from None
    finally:
        channel.close()


def _ping_failure(code: object, target: RayAddress, address: str, token: str | None) -> str:
    import grpc

    if code == grpc.StatusCode.UNAUTHENTICATED:
        sent = (f"it refused the token from {token}" if token else
                f"it requires a token and this machine has none ({TOKEN_VAR}, {TOKEN_PATH_VAR} and "
                f"{DEFAULT_TOKEN_PATH} are unset or empty)")
        return (f"the Ray cluster at {address} uses token authentication and {sent}. Give this machine the "
                f"cluster's token: copy the head's {DEFAULT_TOKEN_PATH} (`ray get-auth-token` on the head "
                f"prints it) to {DEFAULT_TOKEN_PATH} here, or set {TOKEN_VAR}")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        other = (f"its GCS port? Use --cluster {target.host}:{target.port} for that" if target.kind == "client"
                 else f"its client server port? Use --cluster ray://{target.host}:{target.port} for that")
        return f"{target.host}:{target.port} answers but is not a Ray {target.kind} port ({other})"
    return f"the Ray cluster at {address} did not answer a ping ({getattr(code, 'name', code)}): {HOW_TO_START}"


def resolve_auto(address: str) -> RayAddress:
    """The GCS address ``auto`` stands for (``RAY_ADDRESS``, else the cluster of the last ``ray start`` on
    this machine, else any running head here), found the way ``ray.init`` finds it."""
    from ray._private.services import canonicalize_bootstrap_address  # ray.init's own lookup

    try:
        found = canonicalize_bootstrap_address("auto")
    except ConnectionError:
        raise ValueError("--cluster auto: this machine runs no Ray head and belongs to no cluster (no "
                         "RAY_ADDRESS, no `ray start` here): start one here with `ray start --head` or name "
                         "one with --cluster ray://HEAD:10001 (README, Scale out)") from None
    return RayAddress.parse(found or "")


def connect(address: str, namespace: str) -> None:
    """``ray.init`` for ``--cluster`` ``auto``, ``ray://HOST:PORT`` or ``HOST:PORT``; ValueError says what to do."""
    target = RayAddress.parse(address)
    token = use_token_if_available()
    probe = resolve_auto(address) if target.kind == "auto" else target
    shown = address if probe is target else f"{address} ({probe.host}:{probe.port})"
    check_reachable(probe, shown)
    check_answers(probe, shown, token)
    try:
        if target.kind == "client":
            _init_client(address, namespace)
        else:
            ray.init(address=address, namespace=namespace, log_to_driver=False, ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError, RayError) as exc:
        raise ValueError(f"cannot connect to the Ray cluster at {shown}: {exc}") from None


def _init_client(address: str, namespace: str) -> None:
    """``ray.init`` over Ray's client, tried again when the head failed to start this client's own server
    process: Ray's client server forks it from a busy gRPC process and it dies at once now and then
    (ray-project/ray#63202: 5 of 32 first connections to a fresh head here). ``GRPC_ENABLE_FORK_SUPPORT=false``
    in the environment of ``ray start`` avoids it; each such failure costs Ray's own ~40 s wait."""
    for attempt in range(1, CLIENT_ATTEMPTS + 1):
        try:
            ray.init(address=address, namespace=namespace)  # the client takes fewer options
            return
        except ConnectionAbortedError as exc:  # "Initialization failure from server"
            ray.shutdown()
            if attempt == CLIENT_ATTEMPTS:
                raise ConnectionError(f"{exc} (the head's client server failed to start a server for this "
                                      f"connection {CLIENT_ATTEMPTS} times; start the head with "
                                      "GRPC_ENABLE_FORK_SUPPORT=false, README Scale out)") from None
            log.warning("Ray's client server failed to start a server for this connection (%s); trying again",
                        str(exc).splitlines()[0])
