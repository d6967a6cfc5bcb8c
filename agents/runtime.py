"""The agent runtime behind ``podium agent NAME``: one agent's executor served over A2A HTTP and the bus.

It loads ``cards/NAME.json``, fills in where this instance listens, builds the executor from the agent's
module, and runs four things until SIGTERM: the HTTP server, the inbox consumer (one consumer of the
agent's group, so replicas share work), the registry heartbeat, and the inbox's retention timer. On start
it refuses a Redis that may evict keys (``bus.eviction``) and records the inbox's capacity, which
publishers enforce and the HTTP routes apply to new work (``bus.backpressure``). Task state lives in Redis
(``RedisTaskStore`` + ``RedisTaskEventStream``) so any replica can answer for any task.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from a2a.server.agent_execution import AgentExecutor
from a2a.server.agent_execution.simple_request_context_builder import SimpleRequestContextBuilder
from a2a.types.a2a_pb2 import AgentCard, AgentInterface
from redis.exceptions import OutOfMemoryError

from agents.context import AgentContext
from agents.handler import MessageIds, PodiumRequestHandler
from agents.http import build_app
from bus.a2a_server import BusRequestServer
from bus.backoff import TRANSIENT, Backoff
from bus.backpressure import DEFAULT_CAPACITY, DEFAULT_RETRY_AFTER_S, Inboxes, set_limits
from bus.binding import bus_interface
from bus.connection import connect, is_embedded, redact
from bus.consumer import Consumer
from bus.eviction import allowed_from_env, check_eviction
from bus.keys import Keys, validate_name
from bus.retention import Retention, RetentionPolicy
from bus.streams import StreamBus
from bus.task_store import RedisTaskEventStream, RedisTaskStore
from bus.telemetry import setup as setup_tracing
from bus.telemetry import traced_executor

logger = logging.getLogger(__name__)

# agent name -> module with ``build(ctx: AgentContext) -> AgentExecutor``
EXECUTORS: dict[str, str] = {
    "echo": "agents.echo",
    "researcher": "agents.specialists.researcher",
    "analyst": "agents.specialists.analyst",
    "writer": "agents.specialists.writer",
    "reviewer": "agents.specialists.reviewer",
    "orchestrator": "agents.orchestrator",
}


@dataclass
class RuntimeConfig:
    name: str
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    public_url: str | None = None  # what the card advertises, when it differs (containers)
    redis_url: str | None = None
    namespace: str = "podium"
    token: str | None = None
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    concurrency: int = 16
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    heartbeat_ttl: float = 15.0
    grace_s: float = 10.0
    register: bool = True
    capacity: int = DEFAULT_CAPACITY  # unacknowledged inbox entries before new work is refused; 0: no cap
    retry_after_s: float = DEFAULT_RETRY_AFTER_S  # the hint an overloaded agent gives its callers
    allow_eviction: bool = False  # run even on a Redis whose maxmemory-policy evicts keys
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    def __post_init__(self) -> None:
        validate_name("agent name", self.name)
        if self.capacity < 0 or self.retry_after_s < 0:
            raise ValueError(
                f"capacity and retry-after must be >= 0, got {self.capacity}, {self.retry_after_s}"
            )

    @classmethod
    def from_env(cls, name: str, **overrides: Any) -> RuntimeConfig:
        env = os.environ
        values: dict[str, Any] = {
            "redis_url": env.get("REDIS_URL") or None,
            "namespace": env.get("PODIUM_NAMESPACE") or "podium",
            "token": env.get("PODIUM_A2A_TOKEN") or None,
            "public_url": env.get("PODIUM_PUBLIC_URL") or None,
            "capacity": _env_number("PODIUM_INBOX_CAPACITY", int),
            "retry_after_s": _env_number("PODIUM_RETRY_AFTER_S", float),
            "allow_eviction": allowed_from_env() or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(name=name, **{k: v for k, v in values.items() if v is not None})


def load_executor(ctx: AgentContext) -> AgentExecutor:
    """Build the executor for ``ctx.name``: the module its config names (``"executor"``), else Podium's own.

    Raises ``LookupError`` for an agent with no executor.
    """
    from agents.config import load_config

    module_name = load_config(ctx.name).executor or EXECUTORS.get(ctx.name)
    if module_name is None:
        raise LookupError(
            f"no executor for agent {ctx.name!r}; known agents: {', '.join(sorted(EXECUTORS))}, "
            f'or name a module in agents/config/{ctx.name}.json ("executor")'
        )
    module = importlib.import_module(module_name)
    return module.build(ctx)


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGTERM/SIGINT."""

    def capture_signals(self) -> Any:  # type: ignore[override]
        return nullcontext()


class AgentRuntime:
    def __init__(self, config: RuntimeConfig, *, redis: Any = None, handle_signals: bool = True) -> None:
        self.config = config
        self.handle_signals = handle_signals
        self.redis = redis
        self.keys = Keys(config.namespace)
        self.url = ""
        self.card: AgentCard | None = None
        self.consumer: Consumer | None = None
        self._server: QuietServer | None = None
        self._stopping = anyio.Event()
        self._http_done = anyio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, *, on_ready: Callable[[AgentRuntime], None] | None = None) -> None:
        """Serve until :meth:`stop` or SIGTERM/SIGINT, then shut down gracefully."""
        cfg = self.config
        setup_tracing(f"podium-{cfg.name}")
        own_redis = self.redis is None
        self.redis = self.redis if self.redis is not None else connect(cfg.redis_url)
        sock: socket.socket | None = None
        try:
            await _prepare_bus(self.redis, self.keys, cfg)
            sock = _listen(cfg.host, cfg.port)
            await self._serve(sock, on_ready)
        finally:
            if sock is not None:
                sock.close()
            if own_redis:
                with anyio.CancelScope(shield=True):
                    await self.redis.aclose()

    async def _serve(self, sock: socket.socket, on_ready: Callable[[AgentRuntime], None] | None) -> None:
        from registry.cards import load_card  # the registry package owns cards

        cfg = self.config
        port = sock.getsockname()[1]
        self.url = (cfg.public_url or f"http://{_url_host(cfg.host)}:{port}").rstrip("/")
        interfaces = [
            AgentInterface(protocol_binding="JSONRPC", url=self.url, protocol_version="1.0"),
            AgentInterface(protocol_binding="HTTP+JSON", url=self.url, protocol_version="1.0"),
            bus_interface(self.keys.namespace, cfg.name),
        ]
        card = load_card(cfg.name, interfaces=interfaces, security_token_required=bool(cfg.token))
        self.card = card
        async with AsyncExitStack() as stack:
            tools = await _mount_tools(stack, cfg.name, self.redis, cfg)
            ctx = AgentContext(
                name=cfg.name,
                card=card,
                redis=self.redis,
                keys=self.keys,
                tools=tools,
                engine=await _engine(stack),
                config={"instance": cfg.instance},
            )
            executor = traced_executor(load_executor(ctx), cfg.name)
            store = RedisTaskStore(self.redis, self.keys)
            handler = PodiumRequestHandler(
                executor,
                store,
                card,
                agent=cfg.name,
                event_stream=RedisTaskEventStream(self.redis, self.keys),
                request_context_builder=SimpleRequestContextBuilder(
                    task_id_generator=MessageIds(cfg.name, "task"),
                    context_id_generator=MessageIds(cfg.name, "context"),
                ),
            )
            inboxes = Inboxes(self.redis, default_capacity=cfg.capacity)
            bus = StreamBus(self.redis, self.keys)
            self.consumer = Consumer(
                bus,
                cfg.name,
                BusRequestServer(bus, handler, agent=cfg.name, task_store=store),
                consumer=cfg.instance,
                concurrency=cfg.concurrency,
                claim_idle_ms=cfg.claim_idle_ms,
                max_deliveries=cfg.max_deliveries,
            )
            extra = getattr(executor, "routes", None)
            app = build_app(
                card,
                handler,
                token=cfg.token,
                health=self._health,
                routes=extra() if extra else None,
                overloaded=lambda in_flight: inboxes.overloaded(self.keys, cfg.name, in_flight),
            )
            self._server = QuietServer(
                uvicorn.Config(
                    app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=5
                )
            )
            async with anyio.create_task_group() as tg:
                if self.handle_signals:
                    tg.start_soon(self._watch_signals)
                tg.start_soon(self._serve_http, sock)
                await tg.start(self.consumer.run)
                tg.start_soon(Retention(self.redis, self.keys, cfg.retention).run, [cfg.name])
                serve = getattr(executor, "serve", None)
                if serve is not None:  # an executor's own background work (the orchestrator's resume loop)
                    tg.start_soon(serve, handler)
                while not self._server.started:  # noqa: ASYNC110 - uvicorn offers no started event
                    await anyio.sleep(0.01)
                announce = (
                    _announce(self.redis, self.keys, card, cfg, self.url) if cfg.register else nullcontext()
                )
                async with announce:
                    if on_ready:
                        on_ready(self)
                    await self._stopping.wait()
                # Deregistered: now stop taking work and finish (or release) what is in flight.
                await self._shutdown(handler)
                tg.cancel_scope.cancel()

    async def _serve_http(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            await self._server.serve([sock])
        finally:
            self._http_done.set()

    async def _shutdown(self, handler: PodiumRequestHandler) -> None:
        """Stop taking work, let in-flight work finish (or leave it pending for another replica)."""
        logger.info("agent %s: shutting down", self.config.name)
        with anyio.CancelScope(shield=True):
            assert self.consumer is not None and self._server is not None
            await self.consumer.stop(grace=self.config.grace_s)
            self._server.should_exit = True
            with anyio.move_on_after(self.config.grace_s):
                await self._http_done.wait()
            await handler.aclose()
            close = getattr(handler.agent_executor, "aclose", None)
            if close is not None:
                await close()

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                self.stop()
                return

    def _health(self) -> dict[str, Any]:
        c = self.consumer
        return {
            "instance": self.config.instance,
            "bus": "embedded" if is_embedded(self.redis) else redact(self.config.redis_url or ""),
            "handled": getattr(c, "handled", None),
        }


async def _prepare_bus(redis: Any, keys: Keys, cfg: RuntimeConfig) -> None:
    """Refuse an evicting Redis and record the inbox's limits, waiting for Redis if it is not up yet.

    Raises ``EvictionPolicyError`` (a ``ConfigError``) for an evicting Redis unless allowed.
    """
    backoff = Backoff()
    while True:
        try:
            await check_eviction(redis, allow=cfg.allow_eviction, who=f"podium agent {cfg.name}")
            await set_limits(redis, keys, cfg.name, capacity=cfg.capacity, retry_after_s=cfg.retry_after_s)
            return
        except OutOfMemoryError:
            logger.warning(
                "agent %s: Redis is out of memory; its inbox capacity is not recorded yet", cfg.name
            )
            return
        except TRANSIENT as exc:
            logger.warning("agent %s: Redis unavailable (%s); retrying", cfg.name, exc)
            await backoff.sleep()


def _env_number(name: str, kind: type[int] | type[float]) -> Any:
    """A number from the environment, None when unset. Raises ``ValueError`` naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {raw!r}") from None


def _listen(host: str, port: int) -> socket.socket:
    """A bound listening socket, so the card can name the real port before the server starts."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this; without it a pre-bound socket answers small requests only after
        # the client's delayed ACK (~40 ms on Linux).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


async def _mount_tools(stack: AsyncExitStack, name: str, redis: Any, cfg: RuntimeConfig) -> Any:
    """The agent's mounted MCP tools, per its config (none when it has no config); in-process and stdio
    servers share the agent's Redis and namespace."""
    from agents.mcp_mount import mount_for_agent

    return await stack.enter_async_context(
        mount_for_agent(name, redis=redis, redis_url=cfg.redis_url, namespace=cfg.namespace)
    )


async def _engine(stack: AsyncExitStack) -> Any:
    """Claude when ANTHROPIC_API_KEY is set, else None (offline mode)."""
    from agents.llm import engine_from_env

    engine = engine_from_env()
    if engine is not None:
        await stack.enter_async_context(engine)
    return engine


def _announce(redis: Any, keys: Keys, card: AgentCard, cfg: RuntimeConfig, url: str) -> Any:
    from registry import Registry

    registry = Registry(redis, keys)
    return registry.announce(
        card, cfg.instance, ttl=cfg.heartbeat_ttl, interval=cfg.heartbeat_ttl / 3, info={"url": url}
    )


def print_ready(runtime: AgentRuntime) -> None:
    """The line users and tests wait for: where the agent listens."""
    cfg = runtime.config
    print(
        f"podium agent {cfg.name} ready: A2A {runtime.url}  bus redis-streams://{cfg.namespace}/{cfg.name}"
        f"  instance {cfg.instance}",
        flush=True,
    )
    sys.stdout.flush()
