"""Which addresses the server may bind: loopback freely, anything else only with CurveZMQ.

A bind address is *local* when no other machine can connect to it: ``tcp://`` on a loopback IP
(127.0.0.0/8, ``::1``) or ``localhost``, ``ipc://`` (a socket file) and ``inproc://``. Wildcards
(``*``, ``0.0.0.0``), interface names and other addresses are *network* binds.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_TCP = re.compile(r"tcp://(?P<host>\[[^\]]*\]|[^:/\[\];]+):(?P<port>\*|[0-9]{1,5})")


class EndpointError(ValueError):
    """A bind address that cannot or may not be used."""


@dataclass(frozen=True)
class Endpoint:
    """A parsed bind address."""

    text: str
    transport: str
    """``tcp``, ``ipc`` or ``inproc``."""
    host: str | None = None
    port: int | None = None
    """``None`` for ``*`` (an ephemeral port chosen by the OS)."""

    @property
    def is_local(self) -> bool:
        """True when only this machine can connect (see the module docstring)."""
        if self.transport in ("ipc", "inproc"):
            return True
        return _is_loopback_host(self.host or "")


def parse_endpoint(text: str) -> Endpoint:
    """Parse ``tcp://HOST:PORT`` (``PORT`` may be ``*``), ``ipc://PATH`` or ``inproc://NAME``."""
    if not isinstance(text, str) or not text:
        raise EndpointError(f"empty endpoint {text!r}")
    if text.startswith(("ipc://", "inproc://")):
        if len(text.split("://", 1)[1]) == 0:
            raise EndpointError(f"{text!r}: missing path")
        return Endpoint(text, text.split("://", 1)[0])
    match = _TCP.fullmatch(text)
    if match is None:
        raise EndpointError(
            f"cannot use endpoint {text!r}: expected tcp://HOST:PORT (PORT a number or *), ipc://PATH or inproc://NAME")
    port = None if match["port"] == "*" else int(match["port"])
    if port is not None and not 0 < port < 65536:
        raise EndpointError(f"{text!r}: port {port} is not in 1…65535")
    return Endpoint(text, "tcp", match["host"], port)


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # '*', interface names, host names: reachable from elsewhere (or unknown)


def check_bind_policy(endpoints: list[str], secure: bool) -> list[Endpoint]:
    """Parse ``endpoints`` and refuse network binds unless ``secure`` (CurveZMQ configured).

    Raises :class:`EndpointError` naming the endpoint and how to fix it.
    """
    parsed = [parse_endpoint(e) for e in endpoints]
    for endpoint in parsed:
        if not endpoint.is_local and not secure:
            raise EndpointError(
                f"refusing to listen on {endpoint.text}: it is reachable from other machines and CurveZMQ is "
                "not configured. Create keys with `dyntet keys init --dir KEYS` and `dyntet keys add-client "
                "NAME --dir KEYS`, then start `dyntet serve --keys KEYS ...`; or bind tcp://127.0.0.1:PORT.")
    return parsed


def events_endpoint_for(bind: str) -> str:
    """The default event endpoint beside a request endpoint: the next port on the same host
    (``*`` stays ``*``; ipc/inproc get an ``-events`` suffix)."""
    endpoint = parse_endpoint(bind)
    if endpoint.transport != "tcp":
        return bind + "-events"
    if endpoint.port is None:
        return f"tcp://{endpoint.host}:*"
    if endpoint.port == 65535:
        raise EndpointError(f"no port after {endpoint.port}; give --events explicitly")
    return f"tcp://{endpoint.host}:{endpoint.port + 1}"
