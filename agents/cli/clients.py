"""``podium clients add|list|remove``: outside callers' credentials, in the clients file.

``add NAME`` prints the new client's token once, on stdout, alone on its line; the file (``--file`` or
``$PODIUM_CLIENTS_FILE``) keeps only its SHA-256, with the client's name and scopes. Agents pick changes up
while they run. Exit status 2 for a usage mistake (no file named, a bad or taken name, an unknown client).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from podium.agents.host.clients import ClientsFile
from podium.agents.host.settings import CLIENTS_FILE_ENV
from podium.bus.errors import ConfigError
from podium.bus.owners import ASK, SCOPES


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="create a client and print its token once")
    add.add_argument("name", help="the client's name (owner of the tasks it creates)")
    add.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        default=None,
        help=f"{ASK}: its own tasks (default); admin: every task (the console, operators); repeatable",
    )
    listing = sub.add_parser("list", help="the clients: names, scopes, when created (never tokens)")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    remove = sub.add_parser("remove", help="remove a client: its token stops working at once")
    remove.add_argument("name")
    for p in (add, listing, remove):
        p.add_argument("--file", default=None, help=f"the clients file (default ${CLIENTS_FILE_ENV})")


def run(args: argparse.Namespace) -> int:
    path = args.file or os.environ.get(CLIENTS_FILE_ENV)
    if not path:
        print(f"podium clients: no clients file: pass --file FILE or set {CLIENTS_FILE_ENV}", file=sys.stderr)
        return 2
    store = ClientsFile(path)
    try:
        if args.action == "add":
            token = store.add(args.name, tuple(args.scope or [ASK]))
            print(token, flush=True)
        elif args.action == "remove":
            store.remove(args.name)
            print(f"podium clients: removed {args.name}", file=sys.stderr)
        else:
            clients = store.clients()
            if args.json:
                rows = [{"name": c.name, "scopes": list(c.scopes), "created": c.created} for c in clients]
                print(json.dumps({"clients": rows}, indent=2))
            elif not clients:
                print(f"podium clients: none in {path} (add one: podium clients add NAME)", file=sys.stderr)
            else:
                for c in clients:
                    print(f"{c.name:<24} {','.join(c.scopes):<10} {c.created}")
    except ConfigError as exc:
        print(f"podium clients: {exc}", file=sys.stderr)
        return 2
    return 0
