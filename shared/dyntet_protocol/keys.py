"""CurveZMQ key files (the ZPL "certificate" format of czmq/pyzmq) and the client's key set.

A certificate file holds a Z85-encoded public key (40 characters) and, in the secret variant
(``*.key_secret``, written with mode 0600), the secret key too::

    metadata
    curve
        public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
        secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"

The client needs its own key pair and the server's public key (``ClientKeys``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import zmq

_Z85_KEY = re.compile(rb"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")


class KeyFileError(ValueError):
    """A key file is missing, unreadable or malformed."""


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh ``(public, secret)`` CURVE key pair, Z85-encoded (40 bytes each)."""
    return zmq.curve_keypair()


def write_certificate(path: str | os.PathLike, public: bytes, secret: bytes | None = None,
                      comment: str = "") -> Path:
    """Write a certificate; with ``secret`` the file is created with mode 0600 (owner only).

    Refuses to overwrite an existing file (keys are precious; remove it explicitly first).
    """
    path = Path(path)
    for key in (public, secret):
        if key is not None and not _Z85_KEY.fullmatch(key):
            raise KeyFileError("keys must be 40-character Z85 strings")
    lines = ["#   ZeroMQ CURVE " + ("**Secret** Certificate (keep it private)" if secret else "Public Certificate")]
    if comment:
        lines.append(f"#   {comment}")
    lines += ["", "metadata", "curve", f'    public-key = "{public.decode("ascii")}"']
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode("ascii")}"')
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def read_certificate(path: str | os.PathLike) -> tuple[bytes, bytes | None]:
    """``(public, secret or None)`` from a certificate file, both checked to be Z85 keys."""
    path = Path(path)
    if not path.is_file():
        raise KeyFileError(f"key file not found: {path}")
    public = secret = None
    for line in path.read_bytes().splitlines():
        line = line.strip()
        if line.startswith(b"#"):
            continue
        name, _, value = line.partition(b"=")
        value = value.strip().strip(b"'\"")
        if name.strip() == b"public-key":
            public = value
        elif name.strip() == b"secret-key":
            secret = value
    if public is None or not _Z85_KEY.fullmatch(public):
        raise KeyFileError(f"{path}: no valid public-key line")
    if secret is not None and not _Z85_KEY.fullmatch(secret):
        raise KeyFileError(f"{path}: malformed secret-key line")
    if secret is not None and zmq.curve_public(secret) != public:
        raise KeyFileError(f"{path}: the secret key does not belong to the public key")
    return public, secret


@dataclass(frozen=True)
class ClientKeys:
    """What a client needs to talk CurveZMQ to a server (all Z85, 40 bytes)."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def load(cls, server_key_file: str | os.PathLike, client_secret_file: str | os.PathLike) -> "ClientKeys":
        """From the server's public certificate (``server.key``) and the client's secret one
        (``NAME.key_secret``, as written by ``dyntet keys add-client``)."""
        server_public, _ = read_certificate(server_key_file)
        public, secret = read_certificate(client_secret_file)
        if secret is None:
            raise KeyFileError(f"{client_secret_file} holds no secret key (use the .key_secret file)")
        return cls(server_public, public, secret)

    def apply(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE client of the server (call before ``connect``)."""
        socket.curve_serverkey = self.server_public
        socket.curve_publickey = self.public
        socket.curve_secretkey = self.secret
