"""What ``podium up`` runs and how it reports: the agents and their well-known ports, the settings, and
the lines it prints once the system is up."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from typing import Any

import anyio

from podium.agents.host.executors import EXECUTORS
from podium.agents.host.settings import DEFAULT_STARTUP_TIMEOUT_S
from podium.agents.up.supervisor import RestartPolicy
from podium.bus.connection import redact
from podium.bus.keys import Keys

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
    """Agents this installation can run, in a stable order: the built-ins whose executor module is
    installed, then every agent an installed distribution offers (entry point group ``podium.agents``)."""
    from podium.agents.host.sources import installed_names

    own = [name for name in PORTS if importlib.util.find_spec(EXECUTORS[name]) is not None]
    return [*own, *(name for name in installed_names() if name not in own)]


def optional_agents(agents: list[str]) -> set[str]:
    """The agents among ``agents`` that installed distributions offer: one that fails to start is left
    out, with its reason, and the rest keeps running."""
    from podium.agents.host.sources import installed_names

    offered = set(installed_names())
    return {name for name in agents if name in offered}


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
    allow_private_urls: bool = False  # the registry admits outside agents on loopback/private addresses
    replicas: dict[str, int] = field(default_factory=dict)  # agent -> processes (default 1; Redis only)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    console_port: int | None = 8790  # None: no console; 0: any free port
    optional: set[str] = field(default_factory=set)  # agents whose failure to start leaves the rest running
    insecure: bool = False  # --insecure: listen beyond loopback without authentication (warned)

    def port(self, agent: str) -> int:
        return self.ports.get(agent, 0)


class UpError(Exception):
    """``podium up`` could not start the system; the message says why and what to do."""


def say(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
