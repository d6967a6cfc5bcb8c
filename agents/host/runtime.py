"""The agent runtime behind ``podium agent NAME``: one agent's executor served over A2A HTTP and the bus.

It waits for Redis (saying so), loads ``cards/NAME.json``, fills in where this instance listens, builds the
executor from the agent's module, and runs five things until SIGTERM: the HTTP server, the inbox consumer
(one consumer of the agent's group, so replicas share work), the registry heartbeat, the inbox's
retention timer, and the cancel watcher that stops this replica's executor when a task it runs is
cancelled through another replica (``agents.cancels``); plus the executor's own background work, if it
has some (the orchestrator's resume loop). On start it refuses a Redis that may evict keys (``bus.eviction``) and records the inbox's
capacity, which publishers enforce and the HTTP routes apply to new work (``bus.backpressure``). Task
state lives in Redis (``RedisTaskStore`` + ``RedisTaskEventStream``, scoped to the agent) so any replica can
answer for any of the agent's tasks, and no other agent sees them.

Start-up has a deadline (``startup_timeout``); SIGTERM/SIGINT are honoured at every moment: before the
agent takes work they stop it at once; once it does (ready or still starting) a first one shuts down
gracefully and a second one cuts the grace period short (work in flight stays pending for another replica).
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager, nullcontext
from typing import Any
from urllib.parse import urlsplit

import anyio
import uvicorn
from a2a.server.agent_execution.simple_request_context_builder import SimpleRequestContextBuilder
from a2a.types.a2a_pb2 import AgentCard, AgentInterface
from redis.exceptions import NoPermissionError, OutOfMemoryError

from podium.agents.host.auth import Credentials
from podium.agents.host.cancels import CancelNotices, StoppableExecutor
from podium.agents.host.context import AgentContext
from podium.agents.host.engines import agent_engine as _engine
from podium.agents.host.engines import check_llm as _check_llm
from podium.agents.host.engines import mount_tools as _mount_tools
from podium.agents.host.engines import role_engines as _role_engines
from podium.agents.host.executors import load_executor
from podium.agents.host.handler import AgentRequestHandler, MessageIds
from podium.agents.host.hooks import Closable, ProvidesRoutes, RunsInBackground
from podium.agents.host.http import build_app
from podium.agents.host.listening import listen as _listen
from podium.agents.host.listening import listen_failed as _listen_failed
from podium.agents.host.listening import loopback_hosts as _loopback_hosts
from podium.agents.host.listening import url_host as _url_host
from podium.agents.host.settings import (
    STARTUP_TIMEOUT_ENV,
    RuntimeConfig,
    StartupError,
)
from podium.agents.host.sources import import_module, resolve
from podium.bus.a2a_server import BusRequestServer
from podium.bus.backoff import TRANSIENT, Backoff
from podium.bus.backpressure import Inboxes, set_limits
from podium.bus.binding import bus_interface
from podium.bus.connection import connect, is_embedded, redact
from podium.bus.consumer import Consumer
from podium.bus.errors import AccessDenied
from podium.bus.eviction import check_eviction
from podium.bus.keys import Keys
from podium.bus.ready import ping, wait_for_redis
from podium.bus.retention import Retention
from podium.bus.speedups import uvicorn_http
from podium.bus.streams import StreamBus
from podium.bus.task_store import RedisTaskEventStream, RedisTaskStore
from podium.bus.telemetry import setup as setup_tracing
from podium.bus.telemetry import traced_executor

logger = logging.getLogger(__name__)


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGTERM/SIGINT."""

    def capture_signals(self) -> Any:  # type: ignore[override]
        return nullcontext()


class AgentRuntime:
    """One agent, hosted: its executor behind A2A HTTP and the bus (its inbox's consumer group), with
    registry heartbeats, until :meth:`stop` or SIGTERM. Pass ``redis`` to share a client (the embedded
    bus of ``podium up``); else it connects to ``config.redis_url``."""

    def __init__(self, config: RuntimeConfig, *, redis: Any = None, handle_signals: bool = True) -> None:
        self.config = config
        self.handle_signals = handle_signals
        self.redis = redis
        self.keys = Keys(config.namespace)
        self.url = ""
        self.card: AgentCard | None = None
        self.consumer: Consumer | None = None
        self.ready = False
        self.phase = "starting"  # what start-up is doing, for the message when it times out
        self._server: QuietServer | None = None
        self._stopping = anyio.Event()
        self._http_done = anyio.Event()
        self._startup: anyio.CancelScope | None = None  # until ready; stop() and the deadline cancel it
        self._grace = anyio.CancelScope()  # the graceful shutdown's waits; a second stop() cancels them
        self._redis_error = ""
        self._taking_work = False  # the consumer has started: a stop from now on is graceful, ready or not

    def stop(self, *, force: bool = False) -> None:
        """Stop serving. Before the agent is ready it stops at once; after, in-flight work gets the grace
        period, unless ``force`` (or this is the second call) cuts it short."""
        second = force or self._stopping.is_set()
        if second:
            self._grace.cancel()
        self._stopping.set()
        # Once the consumer took work (an autoscaler stopping a replica that is still starting), finish
        # starting and shut down gracefully, so what it took is finished, not left pending; a second
        # signal still stops it at once.
        if self._startup is not None and not self.ready and (second or not self._taking_work):
            self._startup.cancel()

    async def run(self, *, on_ready: Callable[[AgentRuntime], None] | None = None) -> None:
        """Serve until :meth:`stop` or SIGTERM/SIGINT, then shut down gracefully.

        Raises ``StartupError`` when the agent is not ready within ``config.startup_timeout`` (e.g. Redis
        unreachable all along) or loses Redis while starting; ``OSError`` when it cannot listen;
        ``LookupError``, ``ConfigError``, ``MountError`` for what the agent's configuration gets wrong.
        """
        cfg = self.config
        setup_tracing(f"podium-{cfg.name}")
        own_redis = self.redis is None
        self.redis = self.redis if self.redis is not None else connect(cfg.redis_url)
        sock: socket.socket | None = None
        try:
            try:
                with self._signals_stop_me(), anyio.CancelScope() as self._startup:
                    if cfg.startup_timeout:
                        self._startup.deadline = anyio.current_time() + cfg.startup_timeout
                    if self._stopping.is_set():
                        return
                    try:
                        sock = _listen(cfg.host, cfg.port)
                    except OSError as exc:
                        raise StartupError(cfg.name, _listen_failed(cfg.host, cfg.port, exc)) from None
                    await self._serve(sock, on_ready)
            except BaseExceptionGroup as group:  # anyio wraps even a lone error of a task group
                error = sole_error(group)
                if error is group:
                    raise
                raise error from None
        except NoPermissionError as exc:
            raise AccessDenied(self._refused(exc)) from None
        except TRANSIENT as exc:
            if self.ready:
                raise
            raise StartupError(
                cfg.name,
                f"lost Redis at {self._where()} while {self.phase}: {exc}; "
                "check that Redis stays up, then start the agent again",
            ) from exc
        finally:
            if sock is not None:
                sock.close()
            if own_redis:
                with anyio.CancelScope(shield=True):
                    await self.redis.aclose()
        if self._startup.cancelled_caught and not self._stopping.is_set():
            raise StartupError(cfg.name, self._timeout_message())

    def _refused(self, exc: NoPermissionError) -> str:
        user = urlsplit(self.config.redis_url or "").username or "default"
        return (
            f"agent {self.config.name}: Redis refused user {user!r} while {self.phase} ({exc}); run each "
            f"agent with its own user in REDIS_URL (`podium acl` writes one per agent). Not retrying"
        )

    def _where(self) -> str:
        return "embedded" if is_embedded(self.redis) else redact(self.config.redis_url or "")

    def _timeout_message(self) -> str:
        cfg = self.config
        limit = f"{cfg.startup_timeout:g}s"
        how = f"--startup-timeout or {STARTUP_TIMEOUT_ENV} sets how long to wait (0: no limit)"
        if self._redis_error:
            return (
                f"Redis at {self._where()} did not answer within {limit} "
                f"({self._redis_error}). Start Redis there, or point REDIS_URL (or --redis-url) at a "
                f"running server; {how}"
            )
        return f"not ready within {limit}, still {self.phase}; {how}"

    @contextmanager
    def _signals_stop_me(self) -> Iterator[None]:
        """SIGTERM/SIGINT call :meth:`stop` from the first instant of :meth:`run` to its end (a callback,
        not a task, so no await anywhere in start-up or shutdown can delay or swallow one)."""
        if not self.handle_signals:
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _wait_for_redis(self) -> None:
        if is_embedded(self.redis):
            return
        self.phase = f"waiting for Redis at {self._where()}"
        limit = self.config.startup_timeout

        def say(reason: str, waited: float) -> None:
            self._redis_error = reason
            left = f"; giving up after {limit:g}s" if limit else ""
            logger.warning(
                "agent %s: waiting for Redis at %s (%s%s)%s",
                self.config.name,
                self._where(),
                reason,
                f", {waited:.0f}s so far" if waited >= 1 else "",
                left,
            )

        await wait_for_redis(self.redis, on_wait=say)
        self._redis_error = ""

    async def _serve(self, sock: socket.socket, on_ready: Callable[[AgentRuntime], None] | None) -> None:
        from podium.registry.cards import load_card  # the registry package owns cards

        cfg = self.config
        port = sock.getsockname()[1]
        self.url = (cfg.public_url or f"http://{_url_host(cfg.host)}:{port}").rstrip("/")
        # What the configuration gets wrong fails at once, before any waiting for Redis.
        credentials = Credentials.from_config(cfg)
        source = resolve(cfg.name)
        card = load_card(
            source.card or cfg.name,
            interfaces=self._interfaces(),
            security_token_required=cfg.authenticated,
            oidc_issuer=cfg.oidc_issuer,
            expect_name=cfg.name,
        )
        self.card = card
        import_module(source)  # an installed module that does not import fails now, in one line
        _check_llm(cfg.name)
        await self._wait_for_redis()
        self.phase = "checking Redis's eviction policy and recording its inbox limits"
        await _prepare_bus(self.redis, self.keys, cfg)
        async with AsyncExitStack() as stack:
            self.phase = "mounting its MCP servers"
            tools = await _mount_tools(stack, cfg.name, self.redis, cfg)
            ctx = AgentContext(
                name=cfg.name,
                card=card,
                redis=self.redis,
                keys=self.keys,
                tools=tools,
                engine=(engine := await _engine(stack, cfg.name)),
                config={"instance": cfg.instance, "engines": await _role_engines(stack, cfg.name, engine)},
            )
            own = load_executor(ctx)
            executor = StoppableExecutor(traced_executor(own, cfg.name), cfg.name)
            cancels = CancelNotices(self.redis, self.keys, cfg.name)
            store = RedisTaskStore(self.redis, self.keys, cfg.name)
            handler = AgentRequestHandler(
                executor,
                store,
                card,
                agent=cfg.name,
                cancels=cancels,
                event_stream=RedisTaskEventStream(self.redis, self.keys, cfg.name),
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
            app = build_app(
                card,
                handler,
                credentials=credentials,
                loopback_hosts=_loopback_hosts(cfg),
                health=self._health,
                routes=own.routes() if isinstance(own, ProvidesRoutes) else None,
                overloaded=lambda in_flight: inboxes.overloaded(self.keys, cfg.name, in_flight),
            )
            self._server = QuietServer(
                uvicorn.Config(
                    app,
                    log_level="warning",
                    lifespan="off",
                    access_log=False,
                    timeout_graceful_shutdown=5,
                    http=uvicorn_http(),
                )
            )
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._serve_http, sock)
                self.phase = "creating its consumer group"
                await tg.start(self.consumer.run)
                self._taking_work = True
                await tg.start(cancels.watch, executor.stop)
                tg.start_soon(Retention(self.redis, self.keys, cfg.retention).run, [cfg.name])
                if isinstance(own, RunsInBackground):  # e.g. the orchestrator's resume loop
                    tg.start_soon(own.serve, handler)
                self.phase = "starting its HTTP server"
                while not self._server.started:  # noqa: ASYNC110 - uvicorn offers no started event
                    await anyio.sleep(0.01)
                self.phase = "registering its card"
                register = cfg.register and not self._stopping.is_set()
                announce = (
                    _announce(self.redis, self.keys, card, cfg, self.url) if register else nullcontext()
                )
                async with announce:
                    self.ready = True
                    assert self._startup is not None
                    self._startup.deadline = math.inf
                    if on_ready:
                        on_ready(self)
                    await self._stopping.wait()
                # Deregistered: now stop taking work and finish (or release) what is in flight.
                await self._shutdown(handler)
                if isinstance(own, Closable):
                    with anyio.CancelScope(shield=True), anyio.move_on_after(self.config.grace_s):
                        await own.aclose()
                tg.cancel_scope.cancel()

    def _interfaces(self) -> list[AgentInterface]:
        """Where this instance answers. The bus comes first: a client that follows the card's order (the
        a2a-sdk's default) uses the bus when it can speak it, and HTTP otherwise."""
        return [
            bus_interface(self.keys.namespace, self.config.name),
            AgentInterface(protocol_binding="JSONRPC", url=self.url, protocol_version="1.0"),
            AgentInterface(protocol_binding="HTTP+JSON", url=self.url, protocol_version="1.0"),
        ]

    async def _serve_http(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            await self._server.serve([sock])
        finally:
            self._http_done.set()

    async def _shutdown(self, handler: AgentRequestHandler) -> None:
        """Stop taking work, let in-flight work finish (or leave it pending for another replica); a second
        stop() skips the waiting."""
        logger.info("agent %s: shutting down", self.config.name)
        with anyio.CancelScope(shield=True):
            assert self.consumer is not None and self._server is not None
            with self._grace:
                await self.consumer.stop(grace=self.config.grace_s)
                self._server.should_exit = True
                with anyio.move_on_after(self.config.grace_s):
                    await self._http_done.wait()
            self._server.should_exit = True
            with anyio.move_on_after(self.config.grace_s):
                await handler.aclose()

    async def _health(self) -> dict[str, Any]:
        """``/healthz``: ``ok`` while Redis answers, else ``unavailable`` with the reason (a 503)."""
        error = await ping(self.redis)
        body: dict[str, Any] = {
            "status": "ok" if error is None else "unavailable",
            "agent": self.config.name,
            "instance": self.config.instance,
            "bus": self._where(),
            "handled": getattr(self.consumer, "handled", None),
            # Every asyncio task in this process: a number that only grows means something leaks tasks.
            "asyncioTasks": len(asyncio.all_tasks()),
        }
        if error is not None:
            body["error"] = {"code": "redis_unavailable", "message": f"Redis is not answering: {error}"}
        return body


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


def sole_error(group: BaseExceptionGroup) -> BaseException:
    """The one error inside (nested) task-group wrappers, or the group itself when it holds several."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _announce(redis: Any, keys: Keys, card: AgentCard, cfg: RuntimeConfig, url: str) -> Any:
    from podium.registry import Registry

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
