"""An agent's A2A HTTP surface: card, JSON-RPC and HTTP+JSON routes over its request handler, plus
``/healthz``, optional bearer-token auth and a request size limit. A thin adapter, like the bus side."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.types.a2a_pb2 import AgentCard
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PATHS = frozenset({AGENT_CARD_WELL_KNOWN_PATH, "/healthz"})
DEFAULT_MAX_BODY = 1_000_000


class GuardMiddleware:
    """Rejects oversized bodies (413) and, when a token is set, requests without it (401)."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token and scope["path"] not in PUBLIC_PATHS and not self._authorized(headers):
            response: Response = JSONResponse(
                _rpc_error(-32600, "Unauthorized: send 'Authorization: Bearer <PODIUM_A2A_TOKEN>'"),
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="podium"'},
            )
            await response(scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            response = JSONResponse(_rpc_error(-32600, "Payload too large"), status_code=413)
            await response(scope, receive, send)
            return
        await self.app(scope, _limited(receive, self.max_body), send)

    def _authorized(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        scheme, _, value = headers.get("authorization", "").partition(" ")
        # Only the bearer scheme the card declares; compare in constant time.
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())


def _limited(receive: Receive, limit: int) -> Receive:
    """A receive that stops a chunked body from growing past ``limit``."""
    seen = 0

    async def wrapped() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(status_code=413, detail="Payload too large")
        return message

    return wrapped


def _rpc_error(code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}


def build_app(
    card: AgentCard,
    handler: RequestHandler,
    *,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    health: Callable[[], dict[str, Any]] | None = None,
    lifespan: Any = None,
    routes: list[Any] | None = None,
) -> Starlette:
    """The Starlette app serving one agent over JSON-RPC (POST /) and HTTP+JSON (/message:send ...)."""

    async def healthz(request: Request) -> Response:
        body = {"status": "ok", "agent": card.name, **(health() if health else {})}
        return Response(json.dumps(body), media_type="application/json")

    all_routes: list[Any] = [Route("/healthz", healthz, methods=["GET"]), *(routes or [])]
    all_routes += create_agent_card_routes(card)
    all_routes += create_jsonrpc_routes(handler, rpc_url="/")
    # Last: the HTTP+JSON routes include a catch-all tenant mount.
    all_routes += create_rest_routes(handler)
    app = Starlette(routes=all_routes, lifespan=lifespan)
    app.add_middleware(GuardMiddleware, token=token, max_body=max_body)
    return app
