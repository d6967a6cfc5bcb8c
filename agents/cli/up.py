"""``podium up``: run the whole system on this machine (see agents/up/).

Exit status: 0 after SIGTERM/SIGINT, 2 for a usage or configuration mistake, 1 when the system cannot
start (Redis unreachable past ``--startup-timeout``, an agent failing) or a part of it died.
"""

from __future__ import annotations

import argparse
import os
import sys

from redis.exceptions import RedisError

from podium.agents.cli.exposure import refuse_exposure
from podium.agents.host.settings import (
    A2A_AUTH_FIX,
    DEFAULT_STARTUP_TIMEOUT_S,
    REGISTRY_TOKEN_ENV,
    STARTUP_TIMEOUT_ENV,
    RuntimeConfig,
    StartupError,
    registry_token_from_env,
    startup_timeout_from_env,
)
from podium.agents.up.config import (
    REGISTRY_PORT,
    UpConfig,
    UpError,
    available_agents,
    describe,
    optional_agents,
)
from podium.agents.up.embedded import run_embedded
from podium.agents.up.processes import run_processes
from podium.bus.connection import connect
from podium.bus.errors import ConfigError
from podium.bus.eviction import allowed_from_env
from podium.bus.keys import Keys
from podium.bus.speedups import run as run_loop
from podium.registry.errors import RegistryError


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
    parser.add_argument(
        "--replicas",
        action="append",
        default=[],
        metavar="NAME=N",
        help="run N processes of agent NAME, sharing its inbox (repeatable; needs Redis)",
    )
    parser.add_argument("--registry-port", type=int, default=REGISTRY_PORT, help="registry port (8701)")
    parser.add_argument("--any-port", action="store_true", help="free ports instead of the well-known ones")
    parser.add_argument("--console-port", type=int, default=8790, help="the web console's port (8790)")
    parser.add_argument("--no-console", action="store_true", help="do not start the web console")
    parser.add_argument(
        "--allow-eviction",
        action="store_true",
        help="run even if Redis's maxmemory-policy may evict keys (default $PODIUM_ALLOW_EVICTION)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a --host beyond loopback without authentication (warned; default: refused)",
    )
    parser.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="let the registry admit outside agents on loopback/private addresses (local development)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"give up (exit 1) when Redis or an agent is not ready this long "
        f"(default ${STARTUP_TIMEOUT_ENV} or {DEFAULT_STARTUP_TIMEOUT_S:g}; 0: wait forever)",
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
    from podium.agents.host.sources import shadowed

    for ignored in shadowed():
        print(f"podium up: {ignored}", file=sys.stderr)
    agents, problems = check_agents(agents, chosen=bool(args.agents))
    for broken in problems:
        print(f"podium up: {broken}", file=sys.stderr)
    if not agents or (problems and args.agents):
        return 2
    try:
        namespace = Keys(args.namespace or os.environ.get("PODIUM_NAMESPACE") or "podium").namespace
        timeout = startup_timeout_from_env() if args.startup_timeout is None else args.startup_timeout
        if not timeout >= 0:
            raise ConfigError(f"--startup-timeout must be 0 (no limit) or more seconds, got {timeout}")
        if not 0 <= args.registry_port <= 65535:
            raise ConfigError(f"--registry-port must be within 0-65535, got {args.registry_port}")
        if not 0 <= args.console_port <= 65535:
            raise ConfigError(f"--console-port must be within 0-65535, got {args.console_port}")
        redis_url = args.redis_url or os.environ.get("REDIS_URL") or None
        replicas = parse_replicas(args.replicas, agents)
        if any(n > 1 for n in replicas.values()) and not redis_url:
            raise ConfigError("--replicas needs Redis: set REDIS_URL or pass --redis-url")
        if redis_url:
            connect(redis_url)  # refuses a URL it cannot use, naming REDIS_URL; connects only when used
        # The agents' settings, as each will read them (same code in every mode): checked now, once.
        authenticated = RuntimeConfig.from_env(agents[0], redis_url=redis_url).authenticated
        from podium.registry.http import Settings

        Settings.from_env()  # refuses a PODIUM_OUTSIDE_CHECK_S that is not a number
    except (ConfigError, ValueError) as exc:
        print(f"podium up: {exc}", file=sys.stderr)
        return 2
    unauthenticated = {} if authenticated else {"the agents' A2A endpoints": A2A_AUTH_FIX}
    if registry_token_from_env() is None:
        unauthenticated["the registry's writes"] = REGISTRY_TOKEN_ENV
    if refuse_exposure("up", args.host, unauthenticated, args.insecure):
        return 2
    cfg = UpConfig(
        agents=agents,
        host=args.host,
        redis_url=redis_url,
        namespace=namespace,
        registry_port=args.registry_port,
        startup_timeout=timeout,
        allow_eviction=args.allow_eviction or allowed_from_env(),
        replicas=replicas,
        console_port=None if args.no_console else args.console_port,
        optional=optional_agents(agents),
        insecure=args.insecure,
        allow_private_urls=args.allow_private_urls,
    )
    if args.any_port:  # free ports, chosen now: a restarted agent comes back where it was
        cfg.ports = {name: _free_port() for name in agents}
        cfg.registry_port = _free_port()
        cfg.console_port = None if cfg.console_port is None else 0
    elif busy := _busy_ports(cfg):
        print(
            f"podium up: {', '.join(busy)} already in use on {cfg.host}: is another `podium up` running? "
            "Stop it, or pass --any-port (--no-console if only the console's port is taken)",
            file=sys.stderr,
        )
        return 1
    from podium.agents.host.tools import MountError

    try:
        try:
            if cfg.redis_url:
                return run_processes(cfg, lambda urls: describe(cfg, urls))
            run_loop(lambda: run_embedded(cfg, lambda urls: describe(cfg, urls)))
        except BaseExceptionGroup as group:  # a task group's lone error, unwrapped
            failed = _leaves(group)
            if len(failed) == 1:
                raise failed[0] from None
            unready = [e for e in failed if isinstance(e, StartupError)]
            if len(unready) < len(failed):
                raise
            for startup in unready:  # several agents could not start: one line each
                print(f"podium up: agent {startup.agent}: {startup}", file=sys.stderr)
            return 1
    except StartupError as exc:
        print(f"podium up: agent {exc.agent}: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, ValueError, LookupError, RegistryError) as exc:
        print(f"podium up: {exc}", file=sys.stderr)
        return 2
    except (UpError, MountError, OSError, RedisError) as exc:
        print(f"podium up: {exc}", file=sys.stderr)
        return 1
    return 0


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    return [
        leaf for e in group.exceptions for leaf in (_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    ]


def _busy_ports(cfg: UpConfig) -> list[str]:
    """The well-known ports ``podium up`` would listen on that some other process holds."""
    import socket

    wanted = {cfg.port(name): name for name in cfg.agents if cfg.port(name)}
    wanted[cfg.registry_port] = "registry"
    if cfg.console_port:
        wanted[cfg.console_port] = "console"
    busy = []
    for port, name in sorted(wanted.items()):
        with socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((cfg.host, port))
            except OSError:
                busy.append(f"port {port} ({name})")
    return busy


def parse_replicas(values: list[str], agents: list[str]) -> dict[str, int]:
    """``["analyst=2", ...]`` as ``{"analyst": 2}``. Raises ``ConfigError`` naming the bad value."""
    replicas: dict[str, int] = {}
    for value in values:
        name, sep, count = value.partition("=")
        name = name.strip()
        try:
            n = int(count) if sep else 0
        except ValueError:
            n = 0
        if not name or n < 1 or n > 64:
            raise ConfigError(f"--replicas {value!r}: expected NAME=N with N from 1 to 64, e.g. analyst=2")
        if name not in agents:
            raise ConfigError(f"--replicas {value!r}: {name} is not one of the agents: {', '.join(agents)}")
        replicas[name] = n
    return replicas


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_agents(agents: list[str], *, chosen: bool) -> tuple[list[str], list[str]]:
    """The agents that can start, and one line for each installed one that cannot (its module does not
    import, its card or config does not validate, two distributions offer its name). Left out, it does
    not stop the rest unless ``chosen`` (named with ``--agents``). Built-in agents are checked as they
    start, as before."""
    from podium.agents.host.sources import check, resolve

    keep, problems = [], []
    for name in agents:
        if name in optional_agents([name]):
            try:
                check(resolve(name))
            except (ValueError, LookupError, RegistryError) as exc:
                problems.append(f"{exc}" + ("" if chosen else f" (not starting {name}; the rest runs)"))
                continue
        keep.append(name)
    return keep, problems
