"""Errors raised by the MCP servers' own logic.

Tools turn these into MCP ``ToolError`` results the caller can read and act on; protocol failures
(unknown method, malformed request) stay ``MCPError`` and never come from here.
"""

from __future__ import annotations


class McpServersError(Exception):
    """Base class for every error raised by Podium's MCP server logic."""

    default = "MCP server error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default)


class ExpressionError(McpServersError):
    """An expression is malformed, uses something outside arithmetic, or exceeds a size bound."""

    default = "invalid expression"


class DocsPathError(McpServersError):
    """A document id or docs folder would leave the configured roots, or does not exist."""

    default = "document path outside the docs folders"


class BoardLimitError(McpServersError):
    """A blackboard write would exceed a per-note or per-board limit; the board is unchanged."""

    default = "blackboard limit exceeded"


class AllowedHostError(McpServersError):
    """An allowed host or origin given to the DNS-rebinding guard is not a host (or an origin)."""

    default = "not a usable allowed host or origin"


class UnknownServerError(McpServersError, KeyError):
    """No MCP server module has that name."""

    default = "unknown MCP server"

    def __str__(self) -> str:
        return str(self.args[0])
