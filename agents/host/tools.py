"""What an agent's tool loop sees of its tools, whatever serves them (mounted MCP servers, in practice).

The LLM layer depends only on :class:`ToolBox`; ``agents/host/mounting.py`` implements it over MCP clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool as an LLM sees it. ``name`` is unique within a ToolBox (``server__tool`` when mounted)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolResult:
    """A tool's answer. Errors are data (``is_error``) the agent can act on, never exceptions."""

    text: str
    data: Any = None
    is_error: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class ToolBox(Protocol):
    """The tools an agent may call, as ``server__tool`` names: ``ctx.tools`` in an executor."""

    def specs(self) -> list[ToolSpec]:
        """The tools this agent may call (already filtered by its allowlist)."""
        ...

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call one tool. A tool not in ``specs()`` returns an error result; it is never called."""
        ...


class MountError(RuntimeError):
    """A configured MCP server could not be reached when the agent started."""


class NoTools:
    """A ToolBox with no tools."""

    def specs(self) -> list[ToolSpec]:
        return []

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        return ToolResult(text=f"unknown tool {name!r}: this agent mounts no tools", is_error=True)
