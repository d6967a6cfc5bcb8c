"""``podium up`` with Redis: each agent (and its replicas), the registry and the console as supervised
processes of their own (see ``podium.agents.up.supervisor``)."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from urllib.parse import quote, urlsplit, urlunsplit

import anyio
from redis.exceptions import RedisError

from podium.agents.console.launch import UpConsole, for_up
from podium.agents.host.listening import url_host
from podium.agents.host.settings import STARTUP_TIMEOUT_ENV
from podium.agents.up.config import (
    STOP_HINT,
    UpConfig,
    UpError,
    alive_line,
    say,
    warn,
)
from podium.agents.up.lifeline import child_env
from podium.agents.up.supervisor import ChildSpec, Supervisor
from podium.bus.acl import password_variable
from podium.bus.connection import connect, redact
from podium.bus.eviction import ALLOW_ENV, check_eviction
from podium.bus.ready import wait_for_redis

PASSWORD_PREFIX = password_variable("")  # each child gets its own user's password only, in its REDIS_URL


def wait_for_bus(cfg: UpConfig) -> bool:
    """Return True once the Redis at ``cfg.redis_url`` answers, saying so while it does not; False when
    SIGTERM/SIGINT ended the wait. Raises ``UpError`` after ``cfg.startup_timeout`` seconds and
    ``ConfigError`` for a bad URL."""
    assert cfg.redis_url
    where = redact(cfg.redis_url)
    client = connect(cfg.redis_url)
    last = ""

    def waiting(reason: str, waited: float) -> None:
        nonlocal last
        last = reason
        limit = f"; giving up after {cfg.startup_timeout:g}s" if cfg.startup_timeout else ""
        so_far = f", {waited:.0f}s so far" if waited >= 1 else ""
        warn(f"podium up: waiting for Redis at {where} ({reason}{so_far}){limit}")

    async def wait() -> str:
        outcome = "stopped"
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with anyio.create_task_group() as tg:

                    async def wait_or_time_out() -> None:
                        nonlocal outcome
                        with anyio.move_on_after(cfg.startup_timeout or math.inf) as limit:
                            await wait_for_redis(client, on_wait=waiting)
                        outcome = "timeout" if limit.cancelled_caught else "ready"
                        tg.cancel_scope.cancel()

                    tg.start_soon(wait_or_time_out)
                    async for _ in signals:
                        tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await client.aclose()
        return outcome

    outcome = anyio.run(wait)
    if outcome == "timeout":
        raise UpError(
            f"Redis at {where} did not answer within {cfg.startup_timeout:g}s ({last}). Start Redis there, "
            f"or point REDIS_URL (or --redis-url) at a running server; --startup-timeout or "
            f"{STARTUP_TIMEOUT_ENV} sets how long to wait (0: no limit)"
        )
    return outcome == "ready"


class _Signals:
    """SIGTERM/SIGINT counted, not fatal, from construction to :meth:`restore`: the supervisor polls
    ``count`` and a signal can never end this process before its children are stopped."""

    def __init__(self) -> None:
        self.count = 0
        self._previous = {sig: signal.signal(sig, self._received) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _received(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


async def check_redis(cfg: UpConfig) -> None:
    """Refuse (or warn, when allowed) a Redis that may evict keys. Raises ``EvictionPolicyError`` and
    ``redis.RedisError`` (Redis unreachable)."""
    redis = connect(cfg.redis_url)
    try:
        await check_eviction(redis, allow=cfg.allow_eviction, who="podium up")
    finally:
        await redis.aclose()


def children(cfg: UpConfig, console: UpConsole | None = None) -> list[ChildSpec]:
    """Every process ``podium up`` runs and supervises with Redis, in start order: the registry, then each
    agent and its replicas. This is the one place to add another child (e.g. a console): append a
    :class:`ChildSpec` (give it a ``probe`` and ``url`` when it prints no agent ready line)."""
    host = url_host(cfg.host)
    specs = [
        ChildSpec(
            "registry",
            ["registry", "--host", cfg.host, "--port", str(cfg.registry_port)]
            + (["--allow-private-urls"] if cfg.allow_private_urls else []),
            probe=(_probe_host(cfg.host), cfg.registry_port),
            url=f"http://{host}:{cfg.registry_port}",
        )
    ]
    if console:  # the token goes to the console alone
        specs.append(
            ChildSpec(
                "console",
                console.argv(),
                env=console.env(),
                probe=(_probe_host(console.host), console.port),
                url=console.url,
            )
        )
    for name in cfg.agents:
        port = cfg.port(name)
        optional = name in cfg.optional
        insecure = ["--insecure"] if cfg.insecure else []  # `podium up` refused or warned already
        specs.append(
            ChildSpec(
                name, ["agent", name, "--host", cfg.host, "--port", str(port), *insecure], optional=optional
            )
        )
        for n in range(2, cfg.replicas.get(name, 1) + 1):
            # Extra replicas share the inbox's consumer group, so the bus spreads the work; each serves HTTP
            # on a free port (its own /healthz) and advertises the first replica's well-known URL, so the
            # card in the registry names one stable address whichever replica registered last.
            public = {"PODIUM_PUBLIC_URL": f"http://{host}:{port}"} if port else {}
            specs.append(
                ChildSpec(
                    f"{name}#{n}",
                    ["agent", name, "--host", cfg.host, "--port", "0", *insecure],
                    env=public,
                    optional=optional,
                )
            )
    return [_own_user(spec, cfg.redis_url) for spec in specs]


def _own_user(spec: ChildSpec, url: str | None) -> ChildSpec:
    """``spec`` with ``REDIS_URL`` naming its own Redis user when ``PODIUM_REDIS_PASSWORD_<USER>`` is set (the
    passwords ``podium acl --env-file`` writes): each agent as itself, the registry as ``registry``, so
    ``podium up`` runs with the least-privilege ACLs on. Without the variable the child keeps ``REDIS_URL``."""
    user = spec.args[1] if spec.args[0] == "agent" else "registry" if spec.name == "registry" else None
    password = os.environ.get(password_variable(user)) if user else None
    base = urlsplit(url or "")
    if not user or not password or not base.hostname:
        return spec
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{base.netloc.rpartition('@')[2]}"
    return replace(spec, env={**spec.env, "REDIS_URL": urlunsplit(base._replace(netloc=netloc))})


def run_processes(cfg: UpConfig, on_ready: Callable[[dict[str, str]], None] = lambda urls: None) -> int:
    """Each agent (and its replicas) and the registry as its own supervised process on ``cfg.redis_url``;
    returns the exit code.

    Waits for Redis first (raises ``UpError`` when it does not come, ``ConfigError`` for a bad URL). A child
    that crashes is restarted with backoff; one that keeps crashing is given up on (see
    ``agents.supervisor``). Returns 0 when stopped by SIGTERM/SIGINT, 1 when the system could not start
    (a child given up on, or not ready in time) or every agent was given up on.
    """
    assert cfg.redis_url
    if not wait_for_bus(cfg):
        return 0
    anyio.run(check_redis, cfg)  # a Redis that may evict keys is refused before anything starts
    env = child_env(
        {
            **{k: v for k, v in os.environ.items() if not k.startswith(PASSWORD_PREFIX)},
            "REDIS_URL": cfg.redis_url,
            "PODIUM_NAMESPACE": cfg.namespace,
            STARTUP_TIMEOUT_ENV: f"{cfg.startup_timeout:g}",
            "PYTHONUNBUFFERED": "1",
            **({ALLOW_ENV: "1"} if cfg.allow_eviction else {}),
        }
    )
    console = for_up(cfg.host, cfg.console_port)
    signals = _Signals()  # before the first child exists: from here on a signal only sets a flag
    sup = Supervisor(children(cfg, console), env, cfg.restart, lambda: signals.count > 0, say, warn)
    try:
        sup.start_all()
        if not _wait_ready(cfg, sup, signals):
            return 0 if signals.count else 1
        on_ready({c.name: c.url or "" for c in sup.children.values() if not c.gave_up})
        _report_alive(cfg)
        say(STOP_HINT)
        while not signals.count:
            for child in sup.step():
                say(f"podium up: {child.name} is back: {child.url}")
            if not any(c.spec.probe is None for c in sup.active):
                say("podium up: every agent was given up on; stopping")
                return 1
        say("podium up: stopping")
        return 0
    finally:
        seen = signals.count
        sup.stop(cfg.grace_s, interrupted=lambda: signals.count > seen)
        signals.restore()


def _wait_ready(cfg: UpConfig, sup: Supervisor, signals: _Signals) -> bool:
    """True once every child is ready; False when a signal came first, a child was given up on, or one
    was not ready past its start-up timeout (crashes meanwhile are restarted as usual)."""
    limit = cfg.startup_timeout + 30 if cfg.startup_timeout else float("inf")  # the agent's own, plus start
    deadline = time.monotonic() + limit
    while not signals.count:
        sup.step()
        if any(c.gave_up and not c.spec.optional for c in sup.children.values()):
            say("podium up: could not start; stopping the rest")
            return False
        if all(c.ready or (c.gave_up and c.spec.optional) for c in sup.children.values()):
            for child in sup.children.values():
                if child.gave_up and child.spec.name in cfg.agents:
                    say(f"podium up: left out {child.name}, which could not start; the rest runs")
                    cfg.agents.remove(child.spec.name)
            return True
        if time.monotonic() > deadline:
            late = [c.name for c in sup.children.values() if not c.ready]
            say(f"podium up: {', '.join(late)} not ready within {limit:g}s; stopping")
            return False
    return False


def _report_alive(cfg: UpConfig) -> None:
    async def report() -> None:
        redis = connect(cfg.redis_url)
        try:
            say(await alive_line(redis, cfg))
        finally:
            await redis.aclose()

    try:
        anyio.run(report)
    except (RedisError, OSError) as exc:
        warn(f"podium up: cannot read the registry: {exc}")


def _probe_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
