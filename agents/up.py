"""``podium up``: the whole system on one machine.

Without ``REDIS_URL`` everything runs in this one process on the embedded bus: every agent's runtime
(A2A HTTP + inbox consumer + registry heartbeat) and the registry's HTTP service share one in-process
Redis. With ``REDIS_URL`` each agent and the registry run as their own ``podium`` processes, supervised
here: if one dies the others are stopped and the exit code says so.

No child outlives ``podium up``, however it ends: SIGTERM/SIGINT (honoured at every moment, a second one
cuts the grace period short) and its own errors stop them in ``finally``; each child runs in a process
group of its own, so what it leaves behind is swept up; and if ``podium up`` is killed outright, each
child gets SIGTERM from the kernel (``agents.lifeline``). A Redis that may evict keys is refused before
anything starts (see ``bus.eviction``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from types import FrameType
from typing import Any

import anyio
import uvicorn
from redis.exceptions import RedisError

from podium.agents.console.launch import UpConsole, for_up
from podium.agents.lifeline import child_env
from podium.agents.runtime import (
    DEFAULT_STARTUP_TIMEOUT_S,
    EXECUTORS,
    STARTUP_TIMEOUT_ENV,
    AgentRuntime,
    QuietServer,
    RuntimeConfig,
)
from podium.agents.runtime import _url_host as url_host
from podium.agents.supervisor import ChildSpec, RestartPolicy, Supervisor
from podium.bus.connection import connect, redact
from podium.bus.eviction import ALLOW_ENV, check_eviction
from podium.bus.keys import Keys
from podium.bus.ready import wait_for_redis

REGISTRY_PORT = 8701
STOP_HINT = "Ctrl-C stops everything."
# Well-known ports on 127.0.0.1: the orchestrator is 8700 (when it exists), specialists after the registry.
PORTS = {
    "orchestrator": 8700,
    "researcher": 8702,
    "analyst": 8703,
    "writer": 8704,
    "reviewer": 8705,
    "echo": 8706,
}


def available_agents() -> list[str]:
    """Agents whose executor module is installed, in a stable order."""
    return [name for name in PORTS if importlib.util.find_spec(EXECUTORS[name]) is not None]


@dataclass
class UpConfig:
    agents: list[str] = field(default_factory=available_agents)
    host: str = "127.0.0.1"
    redis_url: str | None = None
    namespace: str = "podium"
    registry_port: int = REGISTRY_PORT
    ports: dict[str, int] = field(default_factory=lambda: dict(PORTS))
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S  # per agent, and for Redis; 0: no limit
    grace_s: float = 20.0  # how long stopped children get before SIGKILL
    allow_eviction: bool = False
    replicas: dict[str, int] = field(default_factory=dict)  # agent -> processes (default 1; Redis only)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    console_port: int | None = 8790  # None: no console; 0: any free port

    def port(self, agent: str) -> int:
        return self.ports.get(agent, 0)


class UpError(Exception):
    """``podium up`` could not start the system; the message says why and what to do."""


def say(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_embedded(cfg: UpConfig, on_ready: Callable[[dict[str, str]], None] = lambda urls: None) -> None:
    """Every agent and the registry in this process, on one in-process bus, until SIGINT/SIGTERM (at any
    moment, start-up included; a second one cuts the agents' grace period short).

    Raises what an agent's :meth:`AgentRuntime.run` raises (e.g. ``StartupError``), and ``OSError``.
    """
    from podium.registry.http import Settings, create_app
    from podium.registry.store import Registry

    redis = connect(None)
    keys = Keys(cfg.namespace)
    runtimes = [
        AgentRuntime(
            RuntimeConfig(
                name=name,
                host=cfg.host,
                port=cfg.port(name),
                namespace=cfg.namespace,
                startup_timeout=cfg.startup_timeout,
            ),
            redis=redis,
            handle_signals=False,
        )
        for name in cfg.agents
    ]
    registry = QuietServer(
        uvicorn.Config(
            create_app(Registry(redis, keys), Settings()),
            host=cfg.host,
            port=cfg.registry_port,
            log_level="warning",
            lifespan="on",
        )
    )
    console = for_up(cfg.host, cfg.console_port)
    console_server = console.server(redis, keys) if console else None
    ready: dict[str, str] = {}
    stopping = False

    def mark(runtime: AgentRuntime) -> None:
        ready[runtime.config.name] = runtime.url

    async def announce() -> None:
        while len(ready) < len(runtimes) or not registry.started:  # uvicorn and runtimes offer no events
            if stopping:
                return
            await anyio.sleep(0.05)
        ready["registry"] = f"http://{cfg.host}:{cfg.registry_port}"
        if console:
            ready["console"] = console.url
        on_ready(ready)
        say(await alive_line(redis, cfg))
        say(STOP_HINT)

    async def obey(signals: AsyncIterator[int]) -> None:
        nonlocal stopping
        async for _ in signals:
            if not stopping:
                stopping = True
                say("podium up: stopping")
                for rt in runtimes:
                    rt.stop()
                registry.should_exit = True
                if console_server:
                    console_server.should_exit = True
            else:  # a second signal: no more grace
                for rt in runtimes:
                    rt.stop(force=True)
                registry.force_exit = True
                if console_server:
                    console_server.force_exit = True

    # The receiver is open from the start and through shutdown, so no Ctrl-C is ever lost or fatal.
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as watching:
                watching.start_soon(obey, signals)
                async with anyio.create_task_group() as services:
                    for rt in runtimes:
                        services.start_soon(partial(rt.run, on_ready=mark))
                    services.start_soon(registry.serve)
                    if console_server:
                        services.start_soon(console_server.serve)
                    services.start_soon(announce)
                watching.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await redis.aclose()


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
            ["registry", "--host", cfg.host, "--port", str(cfg.registry_port)],
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
        specs.append(ChildSpec(name, ["agent", name, "--host", cfg.host, "--port", str(port)]))
        for n in range(2, cfg.replicas.get(name, 1) + 1):
            # Extra replicas share the inbox's consumer group, so the bus spreads the work; each serves HTTP
            # on a free port (its own /healthz) and advertises the first replica's well-known URL, so the
            # card in the registry names one stable address whichever replica registered last.
            public = {"PODIUM_PUBLIC_URL": f"http://{host}:{port}"} if port else {}
            specs.append(
                ChildSpec(f"{name}#{n}", ["agent", name, "--host", cfg.host, "--port", "0"], env=public)
            )
    return specs


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
            **os.environ,
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
        on_ready({c.name: c.url or "" for c in sup.children.values()})
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
        if any(c.gave_up for c in sup.children.values()):
            say("podium up: could not start; stopping the rest")
            return False
        if all(c.ready for c in sup.children.values()):
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


async def alive_line(redis: Any, cfg: UpConfig) -> str:
    """Which agents are alive in the registry, once each has as many instances as it runs replicas (or
    after a few seconds: then what is there)."""
    from podium.registry.store import Registry

    want = {name: cfg.replicas.get(name, 1) for name in cfg.agents}
    registry = Registry(redis, Keys(cfg.namespace))
    found: dict[str, int] = {}
    with anyio.move_on_after(10):
        while True:
            found = {e.name: e.alive for e in await registry.list()}
            if all(found.get(n, 0) >= k for n, k in want.items()):
                break
            await anyio.sleep(0.1)
    names = [f"{n} ({found[n]} instances)" if found.get(n, 0) > 1 else n for n in cfg.agents if n in found]
    missing = [n for n in cfg.agents if n not in found]
    line = f"podium up: alive in the registry: {', '.join(names) or 'none'}"
    return line + (f"; not yet: {', '.join(missing)}" if missing else "")


def _probe_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host


def describe(cfg: UpConfig, urls: dict[str, str]) -> None:
    """Where everything listens, the orchestrator first with how to ask it."""
    mode = f"processes on {redact(cfg.redis_url)}" if cfg.redis_url else "one process, embedded bus"
    say(f"podium up: {len(cfg.agents)} agents ({mode}, namespace {cfg.namespace!r})")
    first = [n for n in ("orchestrator", "registry") if n in urls]
    for name in [*first, *(n for n in cfg.agents if n not in first)]:
        say(f"  {name:<13} {urls[name]}")
    for name, n in cfg.replicas.items():
        if n > 1 and name in cfg.agents:
            say(f"  ({name}: {n} replicas sharing its inbox; the card names the URL above)")
    if "console" in urls:
        say(f"  {'console':<13} {urls['console']}  (open it in a browser)")
    if "orchestrator" in urls:
        url = urls["orchestrator"]
        where = "" if url == "http://127.0.0.1:8700" else f"--url {url} "
        say(f'Ask it: podium ask {where}"How does Python\'s with statement work? And what is 15% of 240?"')
    else:
        say("  (no orchestrator: call the agents directly, e.g. with the a2a client)")
