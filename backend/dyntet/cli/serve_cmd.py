"""``dyntet serve``: run the backend server that the Blender add-on drives over ZeroMQ."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from dyntet_protocol.constants import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_REQUEST_ENDPOINT, GIB


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the backend server (requests + events over ZeroMQ)",
        description="Serve a workspace to DynTet clients. Binds loopback by default; a network address "
                    "is refused unless --keys names a CurveZMQ key folder made by `dyntet keys`.")
    parser.add_argument("--workspace", required=True, type=Path, help="folder with datasets/, runs/, sequences/")
    parser.add_argument("--bind", default=DEFAULT_REQUEST_ENDPOINT,
                        help=f"request endpoint (default {DEFAULT_REQUEST_ENDPOINT}; "
                             "tcp://127.0.0.1:* picks a free port)")
    parser.add_argument("--events", default=None, help="event endpoint (default: the port after --bind)")
    parser.add_argument("--keys", type=Path, default=None,
                        help="CurveZMQ key folder (dyntet keys init); required for non-loopback addresses")
    parser.add_argument("--max-jobs", type=int, default=1,
                        help="heavy jobs running at once (default 1; with --cluster: the cluster's slots)")
    parser.add_argument("--cluster", default="local", metavar="local|auto|ray://HOST:PORT",
                        help="where heavy jobs run: this machine (default), the Ray cluster this machine is part "
                             "of (auto), or a Ray head; needs pip install 'dyntet[cluster]'")
    parser.add_argument("--max-queued", type=int, default=100, help="jobs that may wait in the queue")
    parser.add_argument("--cancel-grace", type=float, default=30.0, metavar="S",
                        help="seconds a cancelled job may take to checkpoint before it is terminated")
    parser.add_argument("--shutdown-grace", type=float, default=30.0, metavar="S",
                        help="seconds running jobs get to checkpoint when the server stops")
    parser.add_argument("--max-upload-gib", type=float, default=DEFAULT_MAX_UPLOAD_BYTES / GIB, metavar="GIB",
                        help=f"largest file clients may upload (default {DEFAULT_MAX_UPLOAD_BYTES / GIB:g} GiB)")
    parser.add_argument("--no-probe", action="store_true",
                        help="skip the background device probe (hello then reports no device)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.cli import UserFacingError
    from dyntet.server.app import Server
    from dyntet.server.config import ServerConfig
    from dyntet.server.endpoints import EndpointError
    from dyntet.server.lock import WorkspaceBusy
    from dyntet_protocol.keys import KeyFileError

    try:
        config = ServerConfig(workspace=args.workspace, bind=args.bind, events=args.events, keys=args.keys,
                              max_running=args.max_jobs, max_queued=args.max_queued,
                              cancel_grace_s=args.cancel_grace, shutdown_grace_s=args.shutdown_grace,
                              probe_capabilities=not args.no_probe,
                              max_upload_bytes=int(args.max_upload_gib * GIB), cluster=args.cluster)
        server = Server(config)
    except (ValueError, OSError) as exc:
        raise UserFacingError(str(exc)) from None
    _configure_logging(args.log_level, server.workspace.state_dir / "server.log")
    try:
        server.start()
    except (EndpointError, WorkspaceBusy, KeyFileError, OSError, ValueError) as exc:
        raise UserFacingError(str(exc)) from None
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda signum, frame: server.request_shutdown(
                f"received {signal.Signals(signum).name}"))
    print(f"dyntet serve: requests {server.request_endpoint} events {server.events_endpoint} "
          f"workspace {server.workspace.root}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0


def _configure_logging(level: str, log_file: Path) -> None:
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger("dyntet")
    root.setLevel(level)
    for handler in (logging.StreamHandler(sys.stderr), logging.FileHandler(log_file, encoding="utf-8")):
        handler.setFormatter(formatter)
        root.addHandler(handler)
