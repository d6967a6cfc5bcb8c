"""``podium up``: the whole system on one machine.

Without ``REDIS_URL`` everything runs in this one process on the embedded bus: every agent's runtime
(A2A HTTP + inbox consumer + registry heartbeat) and the registry's HTTP service share one in-process
Redis. With ``REDIS_URL`` each agent and the registry run as their own ``podium`` processes, supervised
here: if one dies the others are stopped and the exit code says so. A Redis that may evict keys is refused
before anything starts (see ``bus.eviction``).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import uvicorn

from agents.runtime import EXECUTORS, AgentRuntime, QuietServer, RuntimeConfig
from bus.connection import connect, redact
from bus.eviction import ALLOW_ENV, check_eviction
from bus.keys import Keys

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
    allow_eviction: bool = False

    def port(self, agent: str) -> int:
        return self.ports.get(agent, 0)


def say(message: str) -> None:
    print(message, flush=True)


async def run_embedded(cfg: UpConfig, on_ready: Callable[[dict[str, str]], None] = lambda urls: None) -> None:
    """Every agent and the registry in this process, on one in-process bus, until SIGINT/SIGTERM."""
    from registry.http import Settings, create_app
    from registry.store import Registry

    redis = connect(None)
    keys = Keys(cfg.namespace)
    runtimes = [
        AgentRuntime(
            RuntimeConfig(name=name, host=cfg.host, port=cfg.port(name), namespace=cfg.namespace),
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
    ready: dict[str, str] = {}

    def mark(runtime: AgentRuntime) -> None:
        ready[runtime.config.name] = runtime.url

    # The receiver stays open through shutdown, so a second Ctrl-C cannot interrupt the clean-up.
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:
                for rt in runtimes:
                    tg.start_soon(partial(rt.run, on_ready=mark))
                tg.start_soon(registry.serve)
                with anyio.fail_after(120):
                    while len(ready) < len(runtimes) or not registry.started:  # noqa: ASYNC110 - no events to wait on
                        await anyio.sleep(0.05)
                ready["registry"] = f"http://{cfg.host}:{cfg.registry_port}"
                on_ready(ready)
                async for _ in signals:
                    break
                say("podium up: stopping")
                for rt in runtimes:
                    rt.stop()
                registry.should_exit = True
    finally:
        with anyio.CancelScope(shield=True):
            await redis.aclose()


async def check_redis(cfg: UpConfig) -> None:
    """Refuse (or warn, when allowed) a Redis that may evict keys. Raises ``EvictionPolicyError`` and
    ``redis.RedisError`` (Redis unreachable)."""
    redis = connect(cfg.redis_url)
    try:
        await check_eviction(redis, allow=cfg.allow_eviction, who="podium up")
    finally:
        await redis.aclose()


def run_processes(cfg: UpConfig, on_ready: Callable[[dict[str, str]], None] = lambda urls: None) -> int:
    """Each agent and the registry as its own process on ``cfg.redis_url``; returns the exit code."""
    assert cfg.redis_url
    env = {
        **os.environ,
        "REDIS_URL": cfg.redis_url,
        "PODIUM_NAMESPACE": cfg.namespace,
        "PYTHONUNBUFFERED": "1",
    }
    if cfg.allow_eviction:
        env[ALLOW_ENV] = "1"
    base = [sys.executable, "-m", "agents.cli"]
    children: dict[str, subprocess.Popen[str]] = {}
    try:
        children["registry"] = subprocess.Popen(
            [*base, "registry", "--host", cfg.host, "--port", str(cfg.registry_port)], env=env, text=True
        )
        for name in cfg.agents:
            cmd = [*base, "agent", name, "--host", cfg.host, "--port", str(cfg.port(name))]
            children[name] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        urls = {"registry": f"http://{cfg.host}:{cfg.registry_port}"}
        deadline = time.monotonic() + 120
        for name in cfg.agents:
            line = _ready_line(children[name], deadline)
            if line is None:
                say(f"podium up: agent {name} failed to start (exit {children[name].poll()}); stopping")
                return 1
            urls[name] = line.split("A2A ", 1)[1].split()[0]
        on_ready(urls)
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping:
            dead = [n for n, p in children.items() if p.poll() is not None]
            if dead:
                say(f"podium up: {', '.join(dead)} exited; stopping the rest")
                return 1
            time.sleep(0.2)
        say("podium up: stopping")
        return 0
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _ready_line(proc: subprocess.Popen[str], deadline: float) -> str | None:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return None
        if " ready: A2A " in line:
            return line
    return None


def describe(cfg: UpConfig, urls: dict[str, str]) -> None:
    mode = f"processes on {redact(cfg.redis_url)}" if cfg.redis_url else "one process, embedded bus"
    say(f"podium up: {len(cfg.agents)} agents ({mode}, namespace {cfg.namespace!r})")
    for name in [*cfg.agents, "registry"]:
        say(f"  {name:<13} {urls[name]}")
    if "orchestrator" not in cfg.agents:
        say("  (no orchestrator yet: call the specialists directly, e.g. with the a2a client)")
    say("Ctrl-C stops everything.")
