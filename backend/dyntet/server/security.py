"""CurveZMQ on the server's sockets, with a ZAP handler that admits only allow-listed client keys.

ZeroMQ asks a ZAP handler (RFC 27) about every new connection to a ``curve_server`` socket; pyzmq's
``ThreadAuthenticator`` runs that handler on its own thread and calls :meth:`CurveGuard.callback`
with the client's public key. The allow-list is re-read when the ``authorized/`` folder changes, so
``dyntet keys revoke`` takes effect for new connections without a restart.
"""

from __future__ import annotations

import logging
import threading
import time

import zmq
from zmq.auth.thread import ThreadAuthenticator

from dyntet_protocol.keys import KeyFileError

from .keystore import KeyStore

log = logging.getLogger("dyntet.server")

RELOAD_INTERVAL_S = 1.0
"""How often the allow-list folder is checked for changes (at most; checked on connection attempts)."""


class CurveGuard:
    """Server keys + allow-list. ``start()`` before binding; ``apply(socket)`` to each server socket."""

    def __init__(self, context: zmq.Context, store: KeyStore):
        if not store.has_server_keys():
            raise KeyFileError(f"{store.root} has no server keys; run `dyntet keys init --dir {store.root}`")
        self.store = store
        self.public, self._secret = store.server_keys()
        self._context = context
        self._auth: ThreadAuthenticator | None = None
        self._lock = threading.Lock()
        self._allowed: dict[bytes, str] = {}
        self._stamp: tuple | None = None
        self._checked = 0.0
        self._reload(force=True)
        if not self._allowed:
            log.warning("no client keys in %s: nobody can connect until `dyntet keys add-client` adds one",
                        store.authorized_dir)

    def start(self) -> None:
        self._auth = ThreadAuthenticator(self._context, log=logging.getLogger("dyntet.server.zap"))
        self._auth.start()
        self._auth.configure_curve_callback(domain="*", credentials_provider=self)

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def apply(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE server (call before ``bind``)."""
        socket.curve_server = True
        socket.curve_publickey = self.public
        socket.curve_secretkey = self._secret

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP decision for a client's Z85 public key (called on the authenticator's thread)."""
        self._reload()
        with self._lock:
            name = self._allowed.get(key)
        if name is None:
            log.warning("refused a connection: unknown client key %s…", key[:8].decode("ascii", "replace"))
            return False
        log.info("client %r connected", name)
        return True

    @property
    def clients(self) -> list[str]:
        with self._lock:
            return sorted(self._allowed.values())

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_INTERVAL_S:
            return
        self._checked = now
        stamp = self.store.authorized_stamp()
        if stamp == self._stamp and not force:
            return
        try:
            allowed = {public: name for name, public in self.store.authorized().items()}
        except (KeyFileError, OSError) as exc:
            if force:
                raise
            log.error("keeping the previous allow-list: %s", exc)
            return
        with self._lock:
            self._allowed = allowed
            self._stamp = stamp
        if not force:
            log.info("allow-list reloaded: %d client key(s)", len(allowed))
