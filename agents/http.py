"""An agent's A2A HTTP surface: card, JSON-RPC and HTTP+JSON routes over its request handler, plus
``/healthz``, optional bearer-token auth and a request size limit. A thin adapter, like the bus side.

Requests the guard refuses before the SDK sees them (no token, too large, not UTF-8) get the error in the
shape of the binding they were sent to: a JSON-RPC error object on ``POST /``, a ``google.rpc.Status``-style
``{"error": {"code", "status", "message", "details"}}`` (as a2a-sdk's HTTP+JSON routes answer) elsewhere.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
from a2a.types.a2a_pb2 import AgentCard
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.card_http import AGENT_CARD_MAX_AGE_S, card_etag, card_response

RPC_PATH = "/"
PUBLIC_PATHS = frozenset({AGENT_CARD_WELL_KNOWN_PATH, "/healthz"})
DEFAULT_MAX_BODY = 1_000_000
ERROR_DOMAIN = "a2a-protocol.org"

Health = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Refusal:
    """One way the guard refuses a request, with its code in each binding."""

    http_status: int  # HTTP status on the HTTP+JSON binding
    rpc_code: int  # JSON-RPC error code
    rpc_http_status: (
        int  # HTTP status on the JSON-RPC binding (a parse error is a 200, as the SDK answers it)
    )
    grpc_status: str  # google.rpc status name, for HTTP+JSON
    reason: str  # google.rpc.ErrorInfo reason; A2A's own reasons map back to a2a-sdk error classes


UNAUTHENTICATED = Refusal(401, -32600, 401, "UNAUTHENTICATED", "UNAUTHENTICATED")
TOO_LARGE = Refusal(413, -32600, 413, "INVALID_ARGUMENT", "INVALID_REQUEST")
NOT_UTF8 = Refusal(400, -32700, 200, "INVALID_ARGUMENT", "INVALID_REQUEST")


def refusal_response(
    refusal: Refusal, message: str, *, json_rpc: bool, headers: dict[str, str] | None = None
) -> Response:
    """The refusal as the JSON-RPC binding (``json_rpc``) or the HTTP+JSON binding reports errors."""
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": refusal.reason,
        "domain": ERROR_DOMAIN,
        "metadata": {},
    }
    if json_rpc:
        body: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": refusal.rpc_code, "message": message, "data": [info]},
        }
        return JSONResponse(body, status_code=refusal.rpc_http_status, headers=headers)
    error = {
        "code": refusal.http_status,
        "status": refusal.grpc_status,
        "message": message,
        "details": [info],
    }
    return JSONResponse({"error": error}, status_code=refusal.http_status, headers=headers)


class GuardMiddleware:
    """Refuses, in the binding's own error shape: requests without the token when one is set (401), bodies
    over ``max_body`` bytes whether announced or chunked (413), and bodies that are not UTF-8 (parse
    error). The body is read here, within the limit, and handed on whole."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        json_rpc = scope["path"] == RPC_PATH and scope["method"] == "POST"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token and scope["path"] not in PUBLIC_PATHS and not self._authorized(headers):
            response = refusal_response(
                UNAUTHENTICATED,
                "Unauthenticated: send 'Authorization: Bearer <PODIUM_A2A_TOKEN>'",
                json_rpc=json_rpc,
                headers={"WWW-Authenticate": 'Bearer realm="podium"'},
            )
            await response(scope, receive, send)
            return
        too_large = f"Payload too large: request bodies are limited to {self.max_body} bytes"
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await refusal_response(TOO_LARGE, too_large, json_rpc=json_rpc)(scope, receive, send)
            return
        body = await _read_body(receive, self.max_body)
        if body is None:
            await refusal_response(TOO_LARGE, too_large, json_rpc=json_rpc)(scope, receive, send)
            return
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = (
                f"Parse error: the body is not UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start}); "
                "send JSON encoded as UTF-8"
            )
            await refusal_response(NOT_UTF8, message, json_rpc=json_rpc)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _authorized(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        scheme, _, value = headers.get("authorization", "").partition(" ")
        # Only the bearer scheme the card declares; compare in constant time.
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away; the app sees an empty body
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then the connection's later messages
    (a streaming response listens for the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def card_route(card: AgentCard, *, modified: float, max_age: int = AGENT_CARD_MAX_AGE_S) -> Route:
    """The Agent Card route, with ETag, Last-Modified (``modified``) and Cache-Control."""
    body = agent_card_to_dict(card)
    etag = card_etag(body)

    async def agent_card(request: Request) -> Response:
        return card_response(request, body, last_modified=modified, max_age=max_age, etag=etag)

    return Route(AGENT_CARD_WELL_KNOWN_PATH, agent_card, methods=["GET"])


def build_app(
    card: AgentCard,
    handler: RequestHandler,
    *,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    health: Health | None = None,
    lifespan: Any = None,
    card_modified: float | None = None,
) -> Starlette:
    """The Starlette app serving one agent over JSON-RPC (POST /) and HTTP+JSON (/message:send ...).

    ``health`` returns the ``/healthz`` body; any ``status`` but ``"ok"`` is answered with 503.
    ``card_modified`` (Unix time, default now) is the card's ``Last-Modified``.
    """

    async def healthz(request: Request) -> Response:
        body = {"status": "ok", "agent": card.name, **(await health() if health else {})}
        status = 200 if body["status"] == "ok" else 503
        return Response(json.dumps(body), status_code=status, media_type="application/json")

    routes: list[Any] = [Route("/healthz", healthz, methods=["GET"])]
    routes.append(card_route(card, modified=time.time() if card_modified is None else card_modified))
    routes += create_jsonrpc_routes(handler, rpc_url=RPC_PATH)
    # Last: the HTTP+JSON routes include a catch-all tenant mount.
    routes += create_rest_routes(handler)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(GuardMiddleware, token=token, max_body=max_body)
    return app
