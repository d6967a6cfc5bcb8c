"""``podium mcp NAME``: run one MCP server over stdio (for a client that spawns it) or Streamable HTTP.

Servers import lazily, after the CLI has configured logging, so ``--log-level`` applies to them too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from podium.mcp_servers import SERVERS, AllowedHostError

DEFAULT_PORTS = {"docs": 8710, "calc": 8711, "blackboard": 8712}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError:
        print(f"podium mcp: {name}={value!r} is not a whole number", file=sys.stderr)
        raise SystemExit(2) from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(SERVERS), help="which server to run")
    parser.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default=os.environ.get("PODIUM_MCP_TRANSPORT", "stdio"),
        help="stdio for a client that spawns this process; http for Streamable HTTP at /mcp (default: stdio)",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("PODIUM_MCP_HOST", "127.0.0.1"),
        help="HTTP bind address (default 127.0.0.1, env PODIUM_MCP_HOST); set PODIUM_MCP_TOKEN before exposing it",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a --host beyond loopback without PODIUM_MCP_TOKEN (warned; default: refused)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="HTTP port (default: docs 8710, calc 8711, blackboard 8712; env PODIUM_MCP_PORT)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="HTTP worker processes (default 1, env PODIUM_MCP_WORKERS)"
    )
    parser.add_argument(
        "--allowed-hosts",
        action="append",
        default=None,
        metavar="HOSTS",
        help="HTTP only: more Host names this server answers, comma-separated, NAME or NAME:PORT (repeatable; "
        "default $PODIUM_MCP_ALLOWED_HOSTS; loopback names and the bind address are always allowed; '*': any)",
    )
    parser.add_argument(
        "--allowed-origins",
        action="append",
        default=None,
        metavar="ORIGINS",
        help="HTTP only: more browser Origins allowed, comma-separated, scheme://host[:port] (repeatable; "
        "default $PODIUM_MCP_ALLOWED_ORIGINS; http(s)://<an allowed host> always is)",
    )
    parser.add_argument(
        "--docs-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="docs only: a folder of .txt/.md files to index as well (repeatable; adds to PODIUM_DOCS_DIRS)",
    )


def run(args: argparse.Namespace) -> int:
    from podium.bus.telemetry import setup as setup_tracing
    from podium.mcp_servers import corpus, serve

    setup_tracing(f"podium-mcp-{args.name}")

    if args.docs_dir:
        if args.name != "docs":
            print("podium mcp: --docs-dir applies only to the docs server", file=sys.stderr)
            return 2
        for folder in args.docs_dir:
            if not Path(folder).expanduser().is_dir():
                print(f"podium mcp: --docs-dir {folder!r} is not a directory", file=sys.stderr)
                return 2
        folders = corpus.dirs_from_env() + [str(Path(f).expanduser().resolve()) for f in args.docs_dir]
        os.environ[corpus.ENV_DIRS] = os.pathsep.join(folders)

    if args.transport == "stdio":
        if args.allowed_hosts or args.allowed_origins:
            print(
                "podium mcp: --allowed-hosts and --allowed-origins apply only to --transport http",
                file=sys.stderr,
            )
            return 2
        serve.run_stdio(args.name)
        return 0

    port = args.port if args.port is not None else _env_int("PODIUM_MCP_PORT", DEFAULT_PORTS[args.name])
    workers = args.workers if args.workers is not None else _env_int("PODIUM_MCP_WORKERS", 1)
    if workers < 1 or not 0 < port < 65536:
        print("podium mcp: --workers must be at least 1 and --port within 1-65535", file=sys.stderr)
        return 2
    from podium.agents.cli.exposure import refuse_exposure
    from podium.agents.host.settings import MCP_TOKEN_ENV, mcp_token_from_env

    unauthenticated = {} if mcp_token_from_env() else {f"MCP server {args.name}": MCP_TOKEN_ENV}
    if refuse_exposure("mcp", args.host, unauthenticated, args.insecure):
        return 2
    level = str(getattr(args, "log_level", "warning")).lower()
    try:
        serve.run_http(
            args.name,
            host=args.host,
            port=port,
            workers=workers,
            log_level=level,
            allowed_hosts=args.allowed_hosts,
            allowed_origins=args.allowed_origins,
        )
    except AllowedHostError as exc:
        print(f"podium mcp: {exc}", file=sys.stderr)
        return 2
    return 0
