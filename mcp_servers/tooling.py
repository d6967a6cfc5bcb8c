"""Small helpers every Podium MCP server shares: registering typed tools with clean descriptions, and
reading the lifespan state a tool depends on."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S")


def tool(
    server: MCPServer[Any],
    name: str | None = None,
    *,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
) -> Callable[[F], F]:
    """Register ``fn`` as a tool whose description is its dedented docstring (what a model reads)."""

    def decorator(fn: F) -> F:
        server.add_tool(
            fn,
            name=name,
            description=inspect.cleandoc(fn.__doc__ or ""),
            annotations=ToolAnnotations(
                read_only_hint=read_only,
                destructive_hint=destructive,
                idempotent_hint=idempotent or read_only,
                open_world_hint=False,
            ),
            structured_output=True,
        )
        return fn

    return decorator


def default_server(factory: Callable[[], Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``server``: the module's default server, built on first use, so
    importing a server module has no side effects (MCPServer's constructor configures logging)."""
    built: list[Any] = []

    def __getattr__(name: str) -> Any:
        if name != "server":
            raise AttributeError(f"module has no attribute {name!r}")
        if not built:
            built.append(factory())
        return built[0]

    return __getattr__


def state(ctx: Context[Any, Any], kind: type[S]) -> S:
    """The server's lifespan state, checked to be ``kind`` (a tool wired to the wrong server fails loudly)."""
    value = ctx.request_context.lifespan_context
    if not isinstance(value, kind):
        raise TypeError(f"lifespan state is {type(value).__name__}, expected {kind.__name__}")
    return value
