"""Podium's MCP tool servers, one ``MCPServer`` per module, runnable as ``podium mcp NAME``.

``SERVERS`` maps each server name to its module; every module has ``create_server()`` (a fresh server)
and ``server`` (one built at import, for in-process clients and tools that load a module's ``server``).
"""

from __future__ import annotations

import importlib
from typing import Any

from podium.mcp_servers.errors import (
    AllowedHostError,
    BoardLimitError,
    DocsPathError,
    ExpressionError,
    McpServersError,
    UnknownServerError,
)

__all__ = [
    "SERVERS",
    "AllowedHostError",
    "BoardLimitError",
    "DocsPathError",
    "ExpressionError",
    "McpServersError",
    "UnknownServerError",
    "create_server",
]

SERVERS: dict[str, str] = {
    "docs": "podium.mcp_servers.docs",
    "calc": "podium.mcp_servers.calc",
    "blackboard": "podium.mcp_servers.blackboard",
}


def create_server(name: str, **options: Any) -> Any:
    """A new ``MCPServer`` for ``name`` (options go to the module's ``create_server``).

    Raises ``UnknownServerError`` listing the known names.
    """
    module = SERVERS.get(name)
    if module is None:
        raise UnknownServerError(f"unknown MCP server {name!r}; choose from {', '.join(sorted(SERVERS))}")
    from podium.bus.telemetry import traced_tools

    return traced_tools(importlib.import_module(module).create_server(**options), name)
