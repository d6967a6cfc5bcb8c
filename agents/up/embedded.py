"""``podium up`` without Redis: every agent's runtime and the registry in this one process, on the embedded bus."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable

import anyio
import uvicorn

from podium.agents.console.launch import for_up
from podium.agents.host.runtime import AgentRuntime, QuietServer
from podium.agents.host.settings import RuntimeConfig, StartupError
from podium.agents.host.tools import MountError
from podium.agents.up.config import (
    STOP_HINT,
    UpConfig,
    alive_line,
    say,
    warn,
)
from podium.bus.connection import connect
from podium.bus.keys import Keys
from podium.bus.speedups import uvicorn_http
from podium.registry.errors import RegistryError


async def run_embedded(cfg: UpConfig, on_ready: Callable[[dict[str, str]], None] = lambda urls: None) -> None:
    """Every agent and the registry in this process, on one in-process bus, until SIGINT/SIGTERM (at any
    moment, start-up included; a second one cuts the agents' grace period short).

    Raises what an agent's :meth:`AgentRuntime.run` raises (e.g. ``StartupError``), and ``OSError``.
    """
    from podium.registry.http import Settings, create_app
    from podium.registry.store import Registry

    redis = connect(None)
    keys = Keys(cfg.namespace)
    # The same settings, from the same environment, as `podium agent` in the process mode: tokens,
    # clients file and OIDC included, so the two modes cannot drift apart.
    runtimes = [
        AgentRuntime(
            RuntimeConfig.from_env(
                name,
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
            create_app(Registry(redis, keys), Settings.from_env(allow_private_urls=cfg.allow_private_urls)),
            host=cfg.host,
            port=cfg.registry_port,
            log_level="warning",
            lifespan="on",
            http=uvicorn_http(),
        )
    )
    console = for_up(cfg.host, cfg.console_port)
    console_server = console.server(redis, keys) if console else None
    ready: dict[str, str] = {}
    stopping = False

    failed: list[str] = []

    def mark(runtime: AgentRuntime) -> None:
        ready[runtime.config.name] = runtime.url

    async def run_agent(rt: AgentRuntime) -> None:
        name = rt.config.name
        if name not in cfg.optional:
            await rt.run(on_ready=mark)
            return
        try:  # an installed agent that cannot start is left out; the rest keeps running
            await rt.run(on_ready=mark)
        except (ValueError, LookupError, RegistryError, MountError, StartupError) as exc:
            if rt.ready:
                raise
            warn(f"podium up: {exc} (left out {name}, which could not start; the rest runs)")
            failed.append(name)
            cfg.agents.remove(name)

    async def announce() -> None:
        # uvicorn and runtimes offer no events
        while len(ready) + len(failed) < len(runtimes) or not registry.started:
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
                        services.start_soon(run_agent, rt)
                    services.start_soon(registry.serve)
                    if console_server:
                        services.start_soon(console_server.serve)
                    services.start_soon(announce)
                watching.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await redis.aclose()
