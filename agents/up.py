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
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from types import FrameType

import anyio
import uvicorn

from agents.console.launch import for_up
from agents.lifeline import child_env
from agents.runtime import (
    DEFAULT_STARTUP_TIMEOUT_S,
    EXECUTORS,
    STARTUP_TIMEOUT_ENV,
    AgentRuntime,
    QuietServer,
    RuntimeConfig,
)
from bus.connection import connect, redact
from bus.eviction import ALLOW_ENV, check_eviction
from bus.keys import Keys
from bus.ready import wait_for_redis

REGISTRY_PORT = 8701
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
    from registry.http import Settings, create_app
    from registry.store import Registry

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


def run_processes(cfg: UpConfig, on_ready: Callable[[dict[str, str]], None] = lambda urls: None) -> int:
    """Each agent and the registry as its own process on ``cfg.redis_url``; returns the exit code.

    Waits for Redis first (raises ``UpError`` when it does not come, ``ConfigError`` for a bad URL).
    Returns 0 when stopped by SIGTERM/SIGINT, 1 when a child failed to start or died.
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
    env.update(console.env() if console else {})
    base = [sys.executable, "-m", "agents.cli"]
    children: dict[str, subprocess.Popen[bytes]] = {}
    signals = _Signals()  # before the first child exists: from here on a signal only sets a flag

    def spawn(name: str, args: list[str], **kwargs: object) -> None:
        # A process group of its own: Ctrl-C reaches only podium up, which stops each child once, in
        # order; and the whole group can be swept when the child is gone.
        children[name] = subprocess.Popen([*base, *args], env=env, process_group=0, **kwargs)  # type: ignore[call-overload]

    try:
        spawn("registry", ["registry", "--host", cfg.host, "--port", str(cfg.registry_port)])
        if console:
            spawn("console", console.argv())
        for name in cfg.agents:
            spawn(
                name,
                ["agent", name, "--host", cfg.host, "--port", str(cfg.port(name))],
                stdout=subprocess.PIPE,
            )
        urls = _wait_ready(cfg, children, signals)
        if urls is None:
            return 0 if signals.count else 1
        if console:
            urls["console"] = console.url
        on_ready(urls)
        while not signals.count:
            dead = [n for n, p in children.items() if p.poll() is not None]
            if dead:
                say(f"podium up: {', '.join(dead)} exited; stopping the rest")
                return 1
            time.sleep(0.2)
        say("podium up: stopping")
        return 0
    finally:
        _stop_children(children, signals, cfg.grace_s)
        signals.restore()


def _wait_ready(
    cfg: UpConfig, children: dict[str, subprocess.Popen[bytes]], signals: _Signals
) -> dict[str, str] | None:
    """Each agent's A2A URL once it printed its ready line; None when a signal came first or an agent
    exited (or stayed silent past its start-up timeout) before it was ready."""
    limit = cfg.startup_timeout + 30 if cfg.startup_timeout else float("inf")  # the agent's own, plus start
    deadline = time.monotonic() + limit
    urls = {"registry": f"http://{cfg.host}:{cfg.registry_port}"}
    pending: dict[str, bytes] = {name: b"" for name in cfg.agents}
    with selectors.DefaultSelector() as selector:
        for name in cfg.agents:
            stdout = children[name].stdout
            assert stdout is not None
            selector.register(stdout, selectors.EVENT_READ, name)
        while pending:
            if signals.count:
                return None
            if time.monotonic() > deadline:
                say(f"podium up: {', '.join(pending)} not ready within {limit:g}s; stopping")
                return None
            for key, _ in selector.select(timeout=0.2):
                name = key.data
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    say(f"podium up: agent {name} failed to start (exit {children[name].wait()}); stopping")
                    return None
                *lines, pending[name] = (pending[name] + chunk).split(b"\n")
                for line in lines:
                    if b" ready: A2A " in line:
                        urls[name] = line.decode(errors="replace").split("A2A ", 1)[1].split()[0]
                        selector.unregister(key.fileobj)
                        del pending[name]
                        break
    registry = children["registry"]
    if registry.poll() is not None:
        say(f"podium up: the registry failed to start (exit {registry.returncode}); stopping")
        return None
    return urls


def _stop_children(children: dict[str, subprocess.Popen[bytes]], signals: _Signals, grace: float) -> None:
    """SIGTERM each child still running, wait up to ``grace`` seconds (less if another signal comes),
    SIGKILL what is left, then sweep each child's process group for anything it left behind."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    seen = signals.count
    deadline = time.monotonic() + grace
    while any(p.poll() is None for p in children.values()):
        if time.monotonic() > deadline or signals.count > seen:
            break
        time.sleep(0.05)
    for proc in children.values():
        if proc.poll() is None:
            _kill_group(proc.pid)
            proc.wait()
        _kill_group(proc.pid)  # the child is gone; nothing of its group may stay
        if proc.stdout is not None:
            proc.stdout.close()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def describe(cfg: UpConfig, urls: dict[str, str]) -> None:
    mode = f"processes on {redact(cfg.redis_url)}" if cfg.redis_url else "one process, embedded bus"
    say(f"podium up: {len(cfg.agents)} agents ({mode}, namespace {cfg.namespace!r})")
    for name in [*cfg.agents, "registry"]:
        say(f"  {name:<13} {urls[name]}")
    if "console" in urls:
        say(f"  {'console':<13} {urls['console']}  (open it in a browser)")
    if "orchestrator" not in cfg.agents:
        say("  (no orchestrator yet: call the specialists directly, e.g. with the a2a client)")
    say("Ctrl-C stops everything.")
