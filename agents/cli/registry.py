"""``podium registry``: the registry's HTTP service for outside systems (Starlette on uvicorn).

Binds 127.0.0.1:8701 unless told otherwise. ``PODIUM_REGISTRY_TOKEN`` guards writes; without it, writes are
accepted only from loopback clients. ``--trusted-keys`` (or ``PODIUM_TRUSTED_KEYS``) makes it accept and serve only
cards signed by those keys.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator

import uvicorn
from redis.exceptions import RedisError

from podium.agents.host.settings import registry_token_from_env
from podium.bus.connection import connect, is_loopback, redact
from podium.bus.errors import ConfigError
from podium.bus.keys import Keys
from podium.bus.speedups import run as run_loop
from podium.bus.speedups import uvicorn_http
from podium.registry.errors import SigningKeyError
from podium.registry.fetch import DEFAULT_TIMEOUT
from podium.registry.http import Settings, create_app
from podium.registry.signing import TrustedKeys
from podium.registry.store import Registry

logger = logging.getLogger("podium.registry")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8701, help="port (default 8701)")
    parser.add_argument(
        "--redis-url", default=None, help="Redis URL (default $REDIS_URL; none: embedded bus)"
    )
    parser.add_argument(
        "--namespace", default=None, help="key prefix (default $PODIUM_NAMESPACE or 'podium')"
    )
    parser.add_argument(
        "--trusted-keys",
        default=os.environ.get("PODIUM_TRUSTED_KEYS") or None,
        help="directory or file(s) of trusted public keys, separated by ':' (default $PODIUM_TRUSTED_KEYS): "
        "accept only cards signed by them",
    )
    parser.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="let POST /agents fetch cards from, and admit cards naming, private, loopback and link-local addresses",
    )
    parser.add_argument(
        "--fetch-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds allowed to fetch an outside agent's card (default {DEFAULT_TIMEOUT:g})",
    )


def run(args: argparse.Namespace) -> int:
    try:
        trusted = TrustedKeys.from_env(args.trusted_keys or "")
        redis = connect(args.redis_url)
        keys = Keys(args.namespace) if args.namespace else Keys.from_env()
    except (SigningKeyError, ConfigError, ValueError) as exc:
        print(f"podium registry: {exc}", file=sys.stderr)
        return 2
    token = registry_token_from_env()
    url = args.redis_url or os.environ.get("REDIS_URL")
    if not url:
        print(
            "podium registry: no REDIS_URL: using an embedded in-process store, which only this process sees; "
            "set REDIS_URL to list the agents on a shared bus",
            file=sys.stderr,
        )
    if token is None and not is_loopback(args.host):
        print(
            f"podium registry: no PODIUM_REGISTRY_TOKEN: writes are accepted only from loopback clients "
            f"although the service binds {args.host}",
            file=sys.stderr,
        )
    try:
        settings = Settings.from_env(
            allow_private_urls=args.allow_private_urls, fetch_timeout=args.fetch_timeout
        )
    except ValueError as exc:
        print(f"podium registry: {exc}", file=sys.stderr)
        return 2
    registry = Registry(redis, keys, trusted_keys=trusted)
    app = create_app(registry, settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        lifespan="on",
        http=uvicorn_http(),
    )
    server = _Server(config)

    async def serve() -> None:
        try:
            print(
                f"podium registry: http://{args.host}:{args.port} (namespace {keys.namespace!r}, "
                f"redis {redact(url) if url else 'embedded'}, "
                f"{'signed cards only: ' + ', '.join(trusted.kids) if trusted else 'unsigned cards accepted'})",
                file=sys.stderr,
                flush=True,
            )
            await _migrate(registry)
            await server.serve()
        finally:
            await redis.aclose()

    run_loop(serve)
    return 0 if server.started else 1


async def _migrate(registry: Registry) -> None:
    """Cards an older version left in its shared hash move to one key per card (issue 27)."""
    try:
        moved = await registry.migrate_legacy()
    except (RedisError, OSError) as exc:  # Redis not up yet: the agents re-register their cards anyway
        print(f"podium registry: could not migrate the old card hash yet: {exc}", file=sys.stderr)
        return
    if moved:
        print(
            f"podium registry: moved {moved} card(s) from the old shared hash {registry.keys.cards()} "
            "to one key per card",
            file=sys.stderr,
        )


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after a graceful shutdown; a registry stopped on purpose exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
