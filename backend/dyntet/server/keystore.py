"""The folder of CurveZMQ keys that ``dyntet keys`` writes and ``dyntet serve --keys`` reads.

Layout::

    KEYS/
      server.key                 the server's public key: give it to every client
      server.key_secret          the server's secret key (mode 0600; never leaves the server)
      authorized/NAME.key        public keys of the clients allowed to connect (the allow-list)
      clients/NAME.key_secret    a client key pair made here, to copy to that client's machine

A client key pair made elsewhere is allowed by copying its public ``.key`` into ``authorized/``
(``dyntet keys authorize``). Removing a file from ``authorized/`` revokes that client; a running
server notices within a second.
"""

from __future__ import annotations

import re
from pathlib import Path

from dyntet_protocol.keys import KeyFileError, generate_keypair, read_certificate, write_certificate

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class KeyStore:
    """Create and read a key folder (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def server_public_file(self) -> Path:
        return self.root / "server.key"

    @property
    def server_secret_file(self) -> Path:
        return self.root / "server.key_secret"

    @property
    def authorized_dir(self) -> Path:
        return self.root / "authorized"

    @property
    def clients_dir(self) -> Path:
        return self.root / "clients"

    def has_server_keys(self) -> bool:
        return self.server_secret_file.is_file()

    def init(self) -> Path:
        """Make the server key pair. Refuses to replace existing keys (every client would lose access)."""
        if self.server_secret_file.exists() or self.server_public_file.exists():
            raise KeyFileError(f"{self.root} already has server keys; remove them first to make new ones")
        public, secret = generate_keypair()
        write_certificate(self.server_secret_file, public, secret, "dyntet server key pair")
        write_certificate(self.server_public_file, public, None, "dyntet server public key")
        self.authorized_dir.mkdir(parents=True, exist_ok=True)
        self.clients_dir.mkdir(parents=True, exist_ok=True)
        return self.server_public_file

    def add_client(self, name: str) -> Path:
        """Make a client key pair, allow its public key, return the client's secret file."""
        name = self._check_name(name)
        secret_file = self.clients_dir / f"{name}.key_secret"
        if secret_file.exists() or (self.authorized_dir / f"{name}.key").exists():
            raise KeyFileError(f"client {name!r} already exists in {self.root}")
        public, secret = generate_keypair()
        write_certificate(secret_file, public, secret, f"dyntet client {name!r}: copy with server.key to the client")
        write_certificate(self.authorized_dir / f"{name}.key", public, None, f"dyntet client {name!r}")
        return secret_file

    def authorize(self, name: str, public_key_file: str | Path) -> Path:
        """Allow a client whose key pair was made elsewhere (its public certificate file)."""
        name = self._check_name(name)
        public, _ = read_certificate(public_key_file)
        target = self.authorized_dir / f"{name}.key"
        if target.exists():
            raise KeyFileError(f"client {name!r} is already authorized")
        return write_certificate(target, public, None, f"dyntet client {name!r}")

    def revoke(self, name: str) -> None:
        """Remove a client from the allow-list (and its key pair made here, if any)."""
        name = self._check_name(name)
        target = self.authorized_dir / f"{name}.key"
        if not target.exists():
            raise KeyFileError(f"no authorized client {name!r} in {self.root}")
        target.unlink()
        (self.clients_dir / f"{name}.key_secret").unlink(missing_ok=True)

    def server_keys(self) -> tuple[bytes, bytes]:
        """``(public, secret)`` of the server (Z85)."""
        public, secret = read_certificate(self.server_secret_file)
        if secret is None:
            raise KeyFileError(f"{self.server_secret_file} holds no secret key")
        return public, secret

    def authorized(self) -> dict[str, bytes]:
        """Client name → public key (Z85) for every file in ``authorized/``; malformed files are errors."""
        if not self.authorized_dir.is_dir():
            return {}
        return {path.stem: read_certificate(path)[0] for path in sorted(self.authorized_dir.glob("*.key"))}

    def authorized_stamp(self) -> tuple:
        """Changes whenever the allow-list folder's contents change (cheap to poll)."""
        if not self.authorized_dir.is_dir():
            return ()
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                            for p in self.authorized_dir.glob("*.key")))

    @staticmethod
    def _check_name(name: str) -> str:
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            raise KeyFileError(f"client name {name!r} must be 1–64 letters, digits, '_', '-' or '.', "
                               "starting with a letter or digit")
        return name
