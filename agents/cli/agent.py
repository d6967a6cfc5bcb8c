"""``podium agent NAME``: run one agent (A2A HTTP + bus consumer + registry heartbeat).

Exit status: 0 after SIGTERM/SIGINT, 2 for a usage or configuration mistake, 1 when the agent cannot
start (Redis unreachable past ``--startup-timeout``, a tool server down, the port taken).
"""

from __future__ import annotations

import argparse
import sys

import anyio

from podium.agents.host.runtime import AgentRuntime, print_ready
from podium.agents.host.settings import (
    A2A_AUTH_FIX,
    DEFAULT_STARTUP_TIMEOUT_S,
    GRACE_ENV,
    STARTUP_TIMEOUT_ENV,
    RuntimeConfig,
    StartupError,
    exposure_problem,
)
from podium.bus.errors import ConfigError
from podium.registry.errors import RegistryError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="agent name; its card is cards/NAME.json")
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
        config = RuntimeConfig.from_env(
            args.name,
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
    except (ConfigError, ValueError) as exc:
        print(f"podium agent: {exc}", file=sys.stderr)
        return 2
    unauthenticated = {} if config.authenticated else {f"agent {args.name}": A2A_AUTH_FIX}
    problem = exposure_problem(args.host, unauthenticated)
    if problem and not args.insecure:
        print(f"podium agent: {problem}", file=sys.stderr)
        return 2
    if problem:
        print(
            f"podium agent: warning: --insecure: agent {args.name} listens on {args.host} without "
            "authentication; anyone who can reach this host can call it",
            file=sys.stderr,
        )
    from podium.agents.host.tools import MountError

    try:
        anyio.run(lambda: AgentRuntime(config).run(on_ready=print_ready))
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
