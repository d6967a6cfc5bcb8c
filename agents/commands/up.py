"""``podium up``: run the whole system on this machine (see agents/up.py)."""

from __future__ import annotations

import argparse
import os
import sys

import anyio
from redis.exceptions import RedisError

from agents.up import (
    REGISTRY_PORT,
    UpConfig,
    available_agents,
    check_redis,
    describe,
    run_embedded,
    run_processes,
)
from bus.connection import redact
from bus.errors import ConfigError
from bus.eviction import allowed_from_env
from bus.keys import Keys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url", default=None, help="Redis URL (default $REDIS_URL; none: one process, embedded bus)"
    )
    parser.add_argument("--namespace", default=None, help="key prefix (default $PODIUM_NAMESPACE or podium)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="bind address for every service (default 127.0.0.1)"
    )
    parser.add_argument(
        "--agents", default=None, help=f"comma-separated agents (default: {','.join(available_agents())})"
    )
    parser.add_argument("--registry-port", type=int, default=REGISTRY_PORT, help="registry port (8701)")
    parser.add_argument("--any-port", action="store_true", help="free ports instead of the well-known ones")
    parser.add_argument(
        "--allow-eviction",
        action="store_true",
        help="run even if Redis's maxmemory-policy may evict keys (default $PODIUM_ALLOW_EVICTION)",
    )


def run(args: argparse.Namespace) -> int:
    known = available_agents()
    agents = [a.strip() for a in args.agents.split(",") if a.strip()] if args.agents else known
    unknown = [a for a in agents if a not in known]
    if unknown:
        print(
            f"podium up: unknown agent(s) {', '.join(unknown)}; available: {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    try:
        namespace = Keys(args.namespace or os.environ.get("PODIUM_NAMESPACE") or "podium").namespace
    except ValueError as exc:
        print(f"podium up: {exc}", file=sys.stderr)
        return 2
    cfg = UpConfig(
        agents=agents,
        host=args.host,
        redis_url=args.redis_url or os.environ.get("REDIS_URL") or None,
        namespace=namespace,
        registry_port=args.registry_port,
        allow_eviction=args.allow_eviction or allowed_from_env(),
    )
    if args.any_port:  # agents take free ports; the registry needs a known one to print
        cfg.ports = {}
        cfg.registry_port = _free_port()
    try:
        if cfg.redis_url:
            try:
                anyio.run(check_redis, cfg)
            except RedisError as exc:
                print(f"podium up: cannot reach Redis at {redact(cfg.redis_url)}: {exc}", file=sys.stderr)
                return 1
            return run_processes(cfg, lambda urls: describe(cfg, urls))
        anyio.run(lambda: run_embedded(cfg, lambda urls: describe(cfg, urls)))
    except (ConfigError, OSError) as exc:
        print(f"podium up: {exc}", file=sys.stderr)
        return 1
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
