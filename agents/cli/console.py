"""``podium console [--port 8790] [--host 127.0.0.1] [--token T]``: the live web console.

It reads everything from Redis (``REDIS_URL`` or ``--redis-url``): the embedded bus of ``podium up`` lives
only inside that process, which starts its own console. With a token (``--token`` or
``PODIUM_CONSOLE_TOKEN``) every API request needs it; without one the console is read only. An address
beyond loopback needs a token.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial

import anyio
from redis.exceptions import RedisError

from podium.agents.console.app import DEFAULT_PORT, TOKEN_ENV, Settings
from podium.bus.connection import connect, is_loopback, redact
from podium.bus.errors import ConfigError
from podium.bus.keys import Keys
from podium.bus.speedups import run as run_loop


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument(
        "--token", default=None, help=f"require this token on every request (default ${TOKEN_ENV})"
    )
    parser.add_argument("--redis-url", default=None, help="Redis URL (default $REDIS_URL)")
    parser.add_argument("--namespace", default=None, help="key prefix (default $PODIUM_NAMESPACE or podium)")
    parser.add_argument(
        "--orchestrator-url",
        default=None,
        help="where Ask sends questions (default: the orchestrator's card in the registry)",
    )


def run(args: argparse.Namespace) -> int:
    url = args.redis_url or os.environ.get("REDIS_URL")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    try:
        if not url:
            raise ConfigError(
                "set REDIS_URL or pass --redis-url: the console reads Redis (`podium up` on the embedded "
                "bus starts a console of its own)"
            )
        if not 0 <= args.port <= 65535:
            raise ConfigError(f"--port must be within 0-65535, got {args.port}")
        if not is_loopback(args.host) and not token:
            raise ConfigError(
                f"--host {args.host} is beyond loopback: give --token (or {TOKEN_ENV}) so only you can use it"
            )
        keys = Keys(args.namespace) if args.namespace else Keys.from_env()
        redis = connect(url)
    except (ConfigError, ValueError) as exc:
        print(f"podium console: {exc}", file=sys.stderr)
        return 2
    from podium.agents.console.launch import listen, server

    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        print(
            f"podium console: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    port = int(sock.getsockname()[1])
    settings = Settings(
        token=token,
        host=args.host,
        orchestrator_url=args.orchestrator_url,
        a2a_token=os.environ.get("PODIUM_A2A_TOKEN"),
    )
    console = server(redis, keys, settings, port, quiet_signals=False)

    async def serve() -> None:
        try:
            await redis.ping()
            async with anyio.create_task_group() as tg:
                tg.start_soon(partial(console.serve, sockets=[sock]))
                while not console.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
                    await anyio.sleep(0.05)
                shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
                mode = "token required" if token else "read only: without a token no replay or ask"
                print(f"podium console ready: http://{shown}:{port}/ ({mode}; namespace {keys.namespace!r})",
                      flush=True)  # fmt: skip
        finally:
            await redis.aclose()

    try:
        run_loop(serve)
    except (RedisError, OSError) as exc:
        print(f"podium console: cannot serve from {redact(url)}: {exc}", file=sys.stderr)
        return 1
    return 0
