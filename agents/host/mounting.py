"""Mounting MCP servers into an agent: :class:`MountedTools` is the agent's :class:`~agents.tools.ToolBox`.

Each configured server gets one MCP client (stdio subprocess, Streamable HTTP, or an in-process
server), kept open by a supervisor task of its own, so a reconnect started from any caller's task
never crosses anyio task boundaries. Tools are exposed as ``<server>__<tool>`` (names an LLM API
accepts), filtered by the server's allowlist; calls have a timeout, and every failure (tool error,
timeout, dead server) comes back as a :class:`~agents.tools.ToolResult` with ``is_error`` set.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import os
import re
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CONNECTION_CLOSED, CallToolResult, TextContent, Tool

from podium.agents.host.config import DEFAULT_TOKEN_ENV, McpServerConfig, load_config
from podium.agents.host.tools import MountError, ToolResult, ToolSpec
from podium.agents.up.lifeline import child_env
from podium.bus.telemetry import span, traced_tools, traceparent

logger = logging.getLogger(__name__)

SEPARATOR = "__"
# What a stdio server inherits from the agent besides the MCP SDK's safe defaults (PATH, HOME, ...).
INHERITED_ENV = (
    "REDIS_URL",
    "PODIUM_NAMESPACE",
    "PODIUM_DOCS_DIRS",
    "PODIUM_LOG_LEVEL",
    "PODIUM_REDIS_CLUSTER",
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Failures that mean the connection, not the call, is broken: reconnect and retry once.
_BROKEN = (
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    OSError,
    httpx2.TransportError,
)


def tool_name(server: str, tool: str) -> str:
    """``server__tool``, with anything an LLM API would reject replaced and the length capped at 64."""
    return _UNSAFE.sub("_", f"{server}{SEPARATOR}{tool}")[:64]


@dataclass(frozen=True, slots=True)
class Shared:
    """What an agent shares with the servers it mounts: in-process servers use its Redis client; stdio
    servers get its Redis URL and namespace in their environment. Unset fields fall back to the env."""

    redis: Any = None
    redis_url: str | None = None
    namespace: str | None = None


def stdio_parameters(cfg: McpServerConfig, shared: Shared = Shared()) -> StdioServerParameters:
    """How to spawn a stdio server: ``podium ...`` runs as ``python -m podium.agents.cli ...`` with this
    interpreter, so it works without the console script on PATH; ``python ...`` (``python -m
    mcp_server_git``) runs with this interpreter too, so a server installed beside Podium is found."""
    assert cfg.command
    command = list(cfg.command)
    if command[0] == "podium":
        command = [sys.executable, "-m", "podium.agents.cli", *command[1:]]
    elif command[0] in ("python", "python3"):
        command[0] = sys.executable
    # OpenTelemetry settings too, so a stdio server's spans join the agent's trace
    env = {
        k: v
        for k, v in os.environ.items()
        if v and (k in INHERITED_ENV or k.startswith(("OTEL_", "PODIUM_OTEL_")))
    }
    if shared.redis_url:
        env["REDIS_URL"] = shared.redis_url
    if shared.namespace:
        env["PODIUM_NAMESPACE"] = shared.namespace
    env.update(cfg.env)
    # A podium server ends with this process, even one killed outright (see agents.lifeline).
    return StdioServerParameters(command=command[0], args=command[1:], env=child_env(env))


def in_process_server(name: str, shared: Shared = Shared()) -> Any:
    """A fresh server of ``mcp_servers``, given whichever of the shared Redis client, URL and namespace
    its ``create_server`` accepts (``redis``, ``url``, ``namespace``)."""
    from podium import mcp_servers

    factory = importlib.import_module(mcp_servers.SERVERS[name]).create_server
    offered = {"redis": shared.redis, "url": shared.redis_url, "namespace": shared.namespace}
    accepted = inspect.signature(factory).parameters
    return traced_tools(
        factory(**{k: v for k, v in offered.items() if v is not None and k in accepted}), name
    )


@asynccontextmanager
async def open_client(cfg: McpServerConfig, shared: Shared = Shared()) -> AsyncIterator[Client]:
    """An entered MCP client for one configured server."""
    async with AsyncExitStack() as stack:
        if cfg.command:
            client = Client(stdio_parameters(cfg, shared))
        elif cfg.url:
            token = os.environ.get(cfg.token_env or DEFAULT_TOKEN_ENV)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=headers, timeout=httpx2.Timeout(cfg.timeout_s, read=cfg.timeout_s + 5)
                )
            )
            client = Client(streamable_http_client(cfg.url, http_client=http, terminate_on_close=False))
        else:
            client = Client(in_process_server(cfg.in_process or cfg.name, shared))
        yield await stack.enter_async_context(client)


async def list_all_tools(client: Client) -> list[Tool]:
    tools, cursor = [], None
    for _ in range(100):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


class _Unavailable(Exception):
    pass


def describe(exc: BaseException) -> str:
    """The first real failure inside (possibly nested) exception groups, as ``Type: message``."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


class Link:
    """One mounted server, connected and reconnected by :meth:`supervise` running in its own task."""

    def __init__(self, cfg: McpServerConfig, shared: Shared = Shared()) -> None:
        self.cfg = cfg
        self.shared = shared
        self.client: Client | None = None
        self.tools: list[Tool] = []
        self.error: str | None = None
        self.attempt = 0
        self._ready = anyio.Event()
        self._retry = anyio.Event()
        self._closing = False

    async def supervise(self) -> None:
        """Connect; serve until asked to reconnect or close; repeat. Failures are kept in ``error``."""
        while not self._closing:
            ready, self._retry = self._ready, anyio.Event()
            try:
                with anyio.CancelScope() as connecting:
                    connecting.deadline = anyio.current_time() + self.cfg.timeout_s
                    async with open_client(self.cfg, self.shared) as client:
                        self.tools = await list_all_tools(client)
                        connecting.deadline = math.inf
                        self.client, self.error = client, None
                        ready.set()
                        await self._retry.wait()
                if connecting.cancelled_caught and self.client is None:
                    self.error = f"no answer within {self.cfg.timeout_s:g}s"
            # The supervisor is this connection's top level: whatever broke it is recorded for callers.
            except Exception as exc:
                self.error = describe(exc)
                logger.warning("MCP server %r (%s): %s", self.cfg.name, self.cfg.transport, self.error)
            finally:
                self.client = None
            ready.set()
            if not self._closing:
                await self._retry.wait()

    async def wait_first_attempt(self) -> None:
        await self._ready.wait()

    async def connected(self) -> Client:
        await self._ready.wait()
        if self.client is None:
            raise _Unavailable(self.error or "not connected")
        return self.client

    async def reconnect(self, seen_attempt: int) -> None:
        """Start a new connection unless one was started since ``seen_attempt``; wait for it."""
        if self.attempt == seen_attempt and not self._closing:
            self.attempt += 1
            self._ready = anyio.Event()
            self._retry.set()
        await self._ready.wait()

    def close(self) -> None:
        self._closing = True
        self._retry.set()


@dataclass(frozen=True, slots=True)
class _Route:
    link: Link
    tool: str
    spec: ToolSpec


def _text(result: CallToolResult) -> str:
    parts = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        else:
            parts.append(f"[{block.type} content]")
    return "\n".join(parts)


class MountedTools:
    """The tools of several MCP servers as one :class:`~agents.tools.ToolBox`; use ``async with``.

    ``specs()`` lists the allowed tools as ``<server>__<tool>``; ``call()`` never raises for tool
    errors, timeouts or a dead server: they come back as ``ToolResult(is_error=True)``. A server that
    died is reconnected and the call retried once. Entering raises ``MountError`` naming every server
    that could not be reached.
    """

    def __init__(
        self, servers: Sequence[McpServerConfig], *, agent: str = "", shared: Shared = Shared()
    ) -> None:
        self.agent = agent
        self.links = [Link(cfg.with_env_overrides(), shared) for cfg in servers]
        self._routes: dict[str, _Route] = {}
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> MountedTools:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(self._close_links)
            for link in self.links:
                tg.start_soon(link.supervise)
            for link in self.links:
                await link.wait_first_attempt()
        except BaseException:
            await stack.__aexit__(*sys.exc_info())
            raise
        failed = [f"{link.cfg.name} ({link.error})" for link in self.links if link.client is None]
        if failed:
            # Raised after the supervisors have stopped, so callers see MountError, not a task-group wrapper.
            await stack.aclose()
            raise MountError(f"agent {self.agent or '?'}: cannot mount MCP server(s): {'; '.join(failed)}")
        for link in self.links:
            self._add_routes(link)
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    def _close_links(self) -> None:
        for link in self.links:
            link.close()

    def _add_routes(self, link: Link) -> None:
        allow = link.cfg.allow
        offered = {tool.name for tool in link.tools}
        for missing in sorted(set(allow or ()) - offered):
            logger.warning("MCP server %r offers no tool %r (in its allowlist)", link.cfg.name, missing)
        for tool in link.tools:
            if allow is not None and tool.name not in allow:
                continue
            name = tool_name(link.cfg.name, tool.name)
            spec = ToolSpec(
                name=name,
                description=tool.description or tool.title or tool.name,
                input_schema=dict(tool.input_schema),
                output_schema=dict(tool.output_schema) if tool.output_schema else None,
            )
            self._routes[name] = _Route(link=link, tool=tool.name, spec=spec)

    def specs(self) -> list[ToolSpec]:
        return [route.spec for route in self._routes.values()]

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        route = self._routes.get(name)
        if route is None:
            return ToolResult(text=f"tool {name!r} is not available to this agent", is_error=True)
        link, meta = route.link, {"server": route.link.cfg.name, "tool": route.tool}
        timeout = link.cfg.timeout_s
        for attempt in (1, 2):
            seen = link.attempt
            try:
                with anyio.fail_after(timeout), span(f"tool {name}", **{"mcp.tool": name}):
                    client = await link.connected()
                    parent = traceparent()
                    request_meta = {"traceparent": parent} if parent else None
                    result = await client.call_tool(route.tool, arguments, meta=request_meta)  # type: ignore[arg-type]
            except TimeoutError:
                return ToolResult(text=f"{name} timed out after {timeout:g}s", is_error=True, meta=meta)
            except MCPError as exc:
                if exc.code == CONNECTION_CLOSED and attempt == 1:
                    await self._reconnect(link, seen)
                    continue
                return ToolResult(text=f"{name}: MCP error {exc.code}: {exc}", is_error=True, meta=meta)
            except (_Unavailable, *_BROKEN) as exc:
                if attempt == 1:
                    await self._reconnect(link, seen)
                    continue
                reason = str(exc) if isinstance(exc, _Unavailable) else describe(exc)
                return ToolResult(text=f"{name}: server unavailable: {reason}", is_error=True, meta=meta)
            except RuntimeError as exc:  # the result did not match the tool's output schema
                return ToolResult(text=f"{name}: {exc}", is_error=True, meta=meta)
            # A ToolBox boundary: the agent's tool loop gets every failure as data, never an exception.
            except Exception as exc:
                logger.exception("MCP tool %s failed unexpectedly", name)
                return ToolResult(text=f"{name} failed: {describe(exc)}", is_error=True, meta=meta)
            return ToolResult(
                text=_text(result), data=result.structured_content, is_error=bool(result.is_error), meta=meta
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _reconnect(self, link: Link, seen: int) -> None:
        logger.info("MCP server %r: reconnecting", link.cfg.name)
        with anyio.move_on_after(link.cfg.timeout_s):
            await link.reconnect(seen)


def mount_for_agent(
    agent: str,
    directory: str | Path | None = None,
    *,
    redis: Any = None,
    redis_url: str | None = None,
    namespace: str | None = None,
) -> MountedTools:
    """``MountedTools`` for the servers in ``agent``'s config (none without a config file).

    Pass the agent's Redis client, URL and namespace so the servers it mounts (the blackboard) use the
    same Redis as the agent; without them they come from ``REDIS_URL`` / ``PODIUM_NAMESPACE``.
    Raises ``AgentConfigError`` at once for a bad config; entering raises ``MountError``.
    """
    shared = Shared(redis=redis, redis_url=redis_url, namespace=namespace)
    return MountedTools(load_config(agent, directory).mcp, agent=agent, shared=shared)
