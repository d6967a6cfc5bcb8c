"""``podium agent NAME``: run one agent (A2A HTTP + bus consumer + registry heartbeat).

Exit status: 0 after SIGTERM/SIGINT, 2 for a usage or configuration mistake, 1 when the agent cannot
start (Redis unreachable past ``--startup-timeout``, a tool server down, the port taken).
"""

from __future__ import annotations

import argparse
import sys

from podium.agents.cli.exposure import refuse_exposure
from podium.agents.host.runtime import AgentRuntime, print_ready
from podium.agents.host.settings import (
    A2A_AUTH_FIX,
    DEFAULT_STARTUP_TIMEOUT_S,
    GRACE_ENV,
    STARTUP_TIMEOUT_ENV,
    RuntimeConfig,
    StartupError,
)
from podium.bus.errors import ConfigError
from podium.bus.speedups import run as run_loop
from podium.registry.errors import RegistryError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name",
        nargs="?",
        default=None,
        help="agent name: a built-in (its card is cards/NAME.json) or an installed one (entry point "
        "group podium.agents); omit it with --card",
    )
    parser.add_argument(
        "--card",
        default=None,
        metavar="FILE",
        help="run the agent this card file describes, without packaging it (needs --executor; a "
        "config.json beside the card mounts its tools)",
    )
    parser.add_argument(
        "--executor",
        default=None,
        metavar="MODULE",
        help="with --card: the module (package.module, importable from here) that defines build(ctx)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="HTTP port (default: a free port)")
    parser.add_argument(
        "--redis-url", default=None, help="Redis URL (default $REDIS_URL; none: embedded bus)"
    )
    parser.add_argument("--namespace", default=None, help="key prefix (default $PODIUM_NAMESPACE or podium)")
    parser.add_argument("--instance", default=None, help="consumer/instance name (default host-pid)")
    parser.add_argument("--concurrency", type=int, default=None, help="requests handled at once (default 16)")
    parser.add_argument("--claim-idle-ms", type=int, default=None, help="reclaim work idle this long (30000)")
    parser.add_argument("--max-deliveries", type=int, default=None, help="deliveries before the DLQ (5)")
    parser.add_argument(
        "--heartbeat-ttl", type=float, default=None, help="registry heartbeat TTL seconds (15)"
    )
    parser.add_argument("--no-register", action="store_true", help="do not register in the registry")
    parser.add_argument(
        "--capacity",
        type=int,
        default=None,
        help="unacknowledged inbox entries before new work is refused as overloaded "
        "(default $PODIUM_INBOX_CAPACITY or 1000; 0: no cap)",
    )
    parser.add_argument(
        "--retry-after",
        type=float,
        default=None,
        help="seconds an overloaded agent tells callers to wait (default $PODIUM_RETRY_AFTER_S or 1)",
    )
    parser.add_argument(
        "--allow-eviction",
        action="store_true",
        help="run even if Redis's maxmemory-policy may evict keys (default $PODIUM_ALLOW_EVICTION)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"after SIGTERM, let in-flight requests finish this long before leaving them pending for "
        f"another replica (default ${GRACE_ENV} or 10)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a --host beyond loopback without authentication (warned; default: refused)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"give up (exit 1) when not ready this long, e.g. Redis unreachable "
        f"(default ${STARTUP_TIMEOUT_ENV} or {DEFAULT_STARTUP_TIMEOUT_S:g}; 0: wait forever)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        name = _agent(args)
        config = RuntimeConfig.from_env(
            name,
            host=args.host,
            port=args.port,
            redis_url=args.redis_url,
            namespace=args.namespace,
            instance=args.instance,
            concurrency=args.concurrency,
            claim_idle_ms=args.claim_idle_ms,
            max_deliveries=args.max_deliveries,
            heartbeat_ttl=args.heartbeat_ttl,
            register=False if args.no_register else None,
            capacity=args.capacity,
            retry_after_s=args.retry_after,
            allow_eviction=True if args.allow_eviction else None,
            startup_timeout=args.startup_timeout,
            grace_s=args.grace,
        )
    except (ConfigError, ValueError, LookupError, RegistryError) as exc:
        print(f"podium agent: {exc}", file=sys.stderr)
        return 2
    unauthenticated = {} if config.authenticated else {f"agent {name}": A2A_AUTH_FIX}
    if refuse_exposure("agent", args.host, unauthenticated, args.insecure):
        return 2
    from podium.agents.host.tools import MountError

    def ready(runtime: AgentRuntime) -> None:
        print_ready(runtime)
        if not config.redis_url:
            print(
                f"podium agent {name}: warning: no REDIS_URL, so it runs on a private in-process bus that "
                f"no other process sees (no orchestrator, registry or console will find it). To join a "
                f"system, set REDIS_URL (or --redis-url) to the Redis of `podium up --redis-url ...`; or "
                f"let `podium up` run it (installed agents join it)",
                file=sys.stderr,
                flush=True,
            )

    try:
        run_loop(lambda: AgentRuntime(config).run(on_ready=ready))
    except (ConfigError, ValueError, LookupError, RegistryError) as exc:
        print(f"podium agent: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"podium agent {exc.agent}: {exc}", file=sys.stderr)
        return 1
    except MountError as exc:
        print(f"podium agent: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"podium agent: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def _agent(args: argparse.Namespace) -> str:
    """The agent's name, checked before anything starts (its module imports and defines ``build``, its
    card and config validate). With ``--card``: the card's name, made known with ``--executor``'s module.
    Raises ``ConfigError`` for a usage mistake, ``AgentSourceError``/``CardError`` naming the file."""
    from pathlib import Path

    from podium.agents.host.sources import AgentSource, add_local, check, resolve, shadowed
    from podium.registry.cards import card_from_json

    if args.card is None:
        if args.executor is not None:
            raise ConfigError("--executor needs --card FILE: the card of the agent it builds")
        if args.name is None:
            raise ConfigError("name an agent (podium agent NAME), or give --card FILE --executor MODULE")
        check(resolve(args.name))
        for ignored in shadowed():
            if ignored.startswith(f"agent {args.name}: "):
                print(f"podium agent: {ignored}", file=sys.stderr)
        return str(args.name)
    if args.executor is None:
        raise ConfigError("--card needs --executor package.module: the module that defines build(ctx)")
    path = Path(args.card)
    if not path.is_file():
        raise ConfigError(f"--card {args.card}: no such file")
    card = card_from_json(path.read_bytes(), source=str(path), require_interfaces=False)
    if args.name is not None and args.name != card.name:
        raise ConfigError(f"{path}: the card's name is {card.name!r}, not {args.name!r}; drop NAME or fix it")
    if "" not in sys.path:  # the module is named as from the current folder, like python -m
        sys.path.insert(0, "")
    source = AgentSource(
        card.name, args.executor, path.resolve(), path.resolve().parent / "config.json", "--card/--executor"
    )
    check(source)
    add_local(source)
    return card.name
