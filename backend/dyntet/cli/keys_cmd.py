"""``dyntet keys``: CurveZMQ keys for serving on a network (server key pair, client allow-list)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keys", help="make CurveZMQ keys so `dyntet serve` may listen on a network",
        description="Manage a key folder for `dyntet serve --keys DIR`. Give each client server.key and "
                    "its own clients/NAME.key_secret; never copy server.key_secret anywhere.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="make the server key pair")
    add = actions.add_parser("add-client", help="make a client key pair and allow it")
    add.add_argument("name")
    authorize = actions.add_parser("authorize", help="allow a client key pair made elsewhere (its public .key file)")
    authorize.add_argument("name")
    authorize.add_argument("public_key", type=Path)
    revoke = actions.add_parser("revoke", help="remove a client from the allow-list")
    revoke.add_argument("name")
    listing = actions.add_parser("list", help="show the server key and the allowed clients")
    for sub in (init, add, authorize, revoke, listing):
        sub.add_argument("--dir", required=True, type=Path, help="the key folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.cli import UserFacingError
    from dyntet.server.keystore import KeyStore
    from dyntet_protocol.keys import KeyFileError

    store = KeyStore(args.dir)
    try:
        if args.action == "init":
            print(f"server public key: {store.init()}  (give it to every client)")
            print(f"server secret key: {store.server_secret_file}  (stays here)")
        elif args.action == "add-client":
            secret = store.add_client(args.name)
            print(f"client {args.name!r}: copy {secret} and {store.server_public_file} to the client machine")
        elif args.action == "authorize":
            print(f"client {args.name!r} allowed: {store.authorize(args.name, args.public_key)}")
        elif args.action == "revoke":
            store.revoke(args.name)
            print(f"client {args.name!r} revoked (a running server stops admitting it within a second)")
        else:
            public, _ = store.server_keys()
            print(f"server key: {public.decode()}  ({store.server_public_file})")
            clients = store.authorized()
            for name, key in clients.items():
                print(f"client {name}: {key.decode()}")
            if not clients:
                print("no clients allowed yet: `dyntet keys add-client NAME --dir ...`")
    except (KeyFileError, OSError) as exc:
        raise UserFacingError(str(exc)) from None
    return 0
