"""Running a Podium MCP server over stdio or Streamable HTTP.

HTTP is stateless with JSON responses (any worker or replica can answer any request), mounted at
exactly ``/mcp`` in a Starlette app whose lifespan runs the server's session manager, with ``/healthz``
beside it. When ``PODIUM_MCP_TOKEN`` is set, ``/mcp`` requires ``Authorization: Bearer <token>``. Whatever the
bind address, ``/mcp`` answers only requests whose ``Host`` and ``Origin`` name this server
(:mod:`mcp_servers.rebinding`; more with ``PODIUM_MCP_ALLOWED_HOSTS`` / ``PODIUM_MCP_ALLOWED_ORIGINS``).

For ``uvicorn --workers N`` (or any process manager), :func:`create_app` is a factory that reads the
server name from ``PODIUM_MCP_SERVER``::

    PODIUM_MCP_SERVER=calc uvicorn --factory mcp_servers.serve:create_app --workers 4 --port 8711
"""

from __future__ import annotations

import hmac
import logging
import os
import sys
from typing import Any

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from podium import mcp_servers
from podium.bus.connection import is_loopback
from podium.bus.speedups import uvicorn_http, uvloop_enabled
from podium.mcp_servers.errors import McpServersError
from podium.mcp_servers.rebinding import HOSTS_ENV, ORIGINS_ENV, AllowedHosts, RebindingGuard

logger = logging.getLogger(__name__)

SERVER_ENV = "PODIUM_MCP_SERVER"
HOST_ENV = "PODIUM_MCP_HOST"
TOKEN_ENV = "PODIUM_MCP_TOKEN"
PATH = "/mcp"
DEFAULT_HOST = "127.0.0.1"


class BearerAuth:
    """ASGI wrapper that admits only requests carrying ``Authorization: Bearer <token>``.

    Answers 401 with ``WWW-Authenticate: Bearer`` otherwise. Compares in constant time and never logs
    the token.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, presented = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(presented.strip(), self._token):
            await self.app(scope, receive, send)
            return
        challenge = 'Bearer realm="podium-mcp"'
        if header:
            challenge += ', error="invalid_token"'
        response = JSONResponse(
            {"error": "unauthorized", "detail": "this MCP server needs a bearer token (PODIUM_MCP_TOKEN)"},
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )
        await response(scope, receive, send)


class _SessionManagerApp:
    """The session manager's request handler as an ASGI class, so Starlette routes it as an app."""

    def __init__(self, server: Any) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.server.session_manager.handle_request(scope, receive, send)


def _configure_logging() -> None:
    """In a uvicorn worker nothing has configured logging yet; do it as the CLI would, before MCPServer's
    own default (INFO) takes over the root logger."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=os.environ.get("PODIUM_LOG_LEVEL", "WARNING").upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )


def create_app(
    name: str | None = None,
    *,
    host: str | None = None,
    token: str | None = None,
    allowed_hosts: str | list[str] | None = None,
    allowed_origins: str | list[str] | None = None,
) -> Starlette:
    """The Starlette app serving MCP server ``name`` (default ``PODIUM_MCP_SERVER``) at ``/mcp``.

    ``host`` (default ``PODIUM_MCP_HOST`` or loopback) is the bind address, which sets the DNS-rebinding
    guard's default hosts; ``allowed_hosts`` and ``allowed_origins`` (comma-separated, default
    ``PODIUM_MCP_ALLOWED_HOSTS`` / ``PODIUM_MCP_ALLOWED_ORIGINS``) add to them. ``token`` defaults to
    ``PODIUM_MCP_TOKEN``. Raises ``McpServersError`` when no server is named, ``UnknownServerError`` for an
    unknown one and ``AllowedHostError`` for an allowed host or origin that is not one.
    """
    _configure_logging()
    name = name or os.environ.get(SERVER_ENV)
    if not name:
        raise McpServersError(f"no MCP server named: pass one or set {SERVER_ENV}")
    host = host or os.environ.get(HOST_ENV) or DEFAULT_HOST
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    allowed = AllowedHosts.for_bind(
        host,
        allowed_hosts if allowed_hosts is not None else os.environ.get(HOSTS_ENV),
        allowed_origins if allowed_origins is not None else os.environ.get(ORIGINS_ENV),
    )
    server = mcp_servers.create_server(name)
    # Builds the stateless, JSON-answering session manager; its own app is not used, only the manager. Its own
    # Host/Origin check (on for a few literal loopback binds only) is off: RebindingGuard does that for every bind.
    server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        host=host,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    if not token and not is_loopback(host):
        logger.warning("MCP server %r listens on %s without a bearer token; set %s", name, host, TOKEN_ENV)
    if "*" in allowed.hosts:
        logger.warning(
            "MCP server %r answers any Host header (%s contains '*'): only safe behind a proxy that checks it",
            name,
            HOSTS_ENV,
        )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "server": name, "auth": bool(token)})

    return Starlette(
        routes=[
            Route(PATH, endpoint=RebindingGuard(BearerAuth(_SessionManagerApp(server), token), allowed)),
            Route("/healthz", endpoint=healthz, methods=["GET"]),
        ],
        lifespan=lambda app: server.session_manager.run(),
    )


def run_http(
    name: str,
    *,
    host: str = DEFAULT_HOST,
    port: int = 8711,
    workers: int = 1,
    log_level: str = "info",
    allowed_hosts: list[str] | None = None,
    allowed_origins: list[str] | None = None,
) -> None:
    """Serve ``name`` over Streamable HTTP with uvicorn; workers share nothing but the environment.

    ``allowed_hosts`` / ``allowed_origins`` (``None``: the environment's) reach the workers through it.
    Raises ``AllowedHostError`` for an allowed host or origin that is not one, before anything listens.
    """
    import uvicorn

    if allowed_hosts is not None:
        os.environ[HOSTS_ENV] = ",".join(allowed_hosts)
    if allowed_origins is not None:
        os.environ[ORIGINS_ENV] = ",".join(allowed_origins)
    guard = AllowedHosts.for_bind(host, os.environ.get(HOSTS_ENV), os.environ.get(ORIGINS_ENV))
    os.environ[SERVER_ENV] = name
    os.environ[HOST_ENV] = host
    os.environ["PODIUM_LOG_LEVEL"] = log_level.upper()
    auth = "bearer token required" if os.environ.get(TOKEN_ENV) else "no token"
    shown = f"[{host}]" if ":" in host else host
    print(
        f"podium mcp {name}: Streamable HTTP at http://{shown}:{port}{PATH} ({workers} worker(s), {auth}; "
        f"answers Host {guard.describe()})",
        flush=True,
    )
    uvicorn.run(
        "podium.mcp_servers.serve:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        http=uvicorn_http(),
        loop="uvloop" if uvloop_enabled() else "asyncio",
    )


def run_stdio(name: str) -> None:
    """Serve ``name`` over stdin/stdout until the client closes stdin."""
    server = mcp_servers.create_server(name)
    anyio.run(server.run_stdio_async)
