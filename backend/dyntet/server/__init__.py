"""The ZeroMQ job server that Blender talks to (``dyntet serve``; protocol in ``docs/protocol.md``).

``app`` (sockets and the loop) · ``handlers`` (dispatch table) · ``workspace`` (path confinement) ·
``catalog`` / ``fetch`` (listings, bulk reads) · ``jobs/`` (queue, child processes, records) ·
``endpoints`` / ``keystore`` / ``security`` (bind policy, CurveZMQ) · ``lock`` (one server per
workspace, ``server.json``) · ``capabilities`` (device probe) · ``config``.
"""

from .config import ServerConfig

__all__ = ["ServerConfig"]
