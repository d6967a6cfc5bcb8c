"""An agent's A2A HTTP surface: card, JSON-RPC and HTTP+JSON routes over its request handler, plus
``/healthz``, optional bearer-token auth, a request size limit, and the refusal of new work while the
agent is over capacity. A thin adapter, like the bus side."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.types.a2a_pb2 import AgentCard
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.backpressure import AgentOverloaded, jsonrpc_error, rest_error, retry_after_header

logger = logging.getLogger(__name__)

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


# Given the requests of new work this replica is serving over HTTP, the error to refuse one more with.
OverloadCheck = Callable[[int], Awaitable[AgentOverloaded | None]]
_NEW_WORK_RPC = frozenset({"SendMessage", "SendStreamingMessage", "message/send", "message/stream"})
_NEW_WORK_PATHS = ("/message:send", "/message:stream")


class OverloadMiddleware:
    """Refuses new work (``SendMessage``/``SendStreamingMessage``, over JSON-RPC at ``POST /`` and HTTP+JSON
    at ``/message:send``, ``/message:stream``) while the agent's unacknowledged inbox entries plus the new
    work this replica is serving over HTTP reach its capacity.

    JSON-RPC gets HTTP 200 with error code -32050 and ``google.rpc`` ErrorInfo/RetryInfo details in
    ``data``; HTTP+JSON gets 503 with a ``google.rpc.Status`` body. Both carry ``Retry-After``.
    """

    def __init__(self, app: ASGIApp, *, check: OverloadCheck) -> None:
        self.app = app
        self.check = check
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        request_id: Any = None
        if path == "/":
            try:
                body, receive = await _buffered(receive)
            except HTTPException as exc:  # a chunked body past the size limit (see _limited)
                await JSONResponse(_rpc_error(-32600, str(exc.detail)), status_code=exc.status_code)(
                    scope, receive, send
                )
                return
            try:
                rpc = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                rpc = None
            if not isinstance(rpc, dict) or rpc.get("method") not in _NEW_WORK_RPC:
                await self.app(scope, receive, send)
                return
            request_id = rpc.get("id")
        elif not path.endswith(_NEW_WORK_PATHS):
            await self.app(scope, receive, send)
            return
        try:
            refusal = await self.check(self.in_flight)
        except (RedisError, OSError) as exc:  # cannot tell: let the request meet the real error downstream
            logger.debug("cannot check capacity: %s", exc)
            refusal = None
        if refusal is not None:
            headers = {"Retry-After": retry_after_header(refusal)}
            response = (
                JSONResponse(jsonrpc_error(request_id, refusal), headers=headers)
                if path == "/"
                else JSONResponse(rest_error(refusal), status_code=503, headers=headers)
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a receive that replays it before passing through (for disconnects)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            first: list[Message] = [message]
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            first = []
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first[0] if first else {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


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
    overloaded: OverloadCheck | None = None,
) -> Starlette:
    """The Starlette app serving one agent over JSON-RPC (POST /) and HTTP+JSON (/message:send ...).

    With ``overloaded``, new work is refused while it returns an error (see :class:`OverloadMiddleware`).
    """

    async def healthz(request: Request) -> Response:
        body = {"status": "ok", "agent": card.name, **(health() if health else {})}
        return Response(json.dumps(body), media_type="application/json")

    all_routes: list[Any] = [Route("/healthz", healthz, methods=["GET"]), *(routes or [])]
    all_routes += create_agent_card_routes(card)
    all_routes += create_jsonrpc_routes(handler, rpc_url="/")
    # Last: the HTTP+JSON routes include a catch-all tenant mount.
    all_routes += create_rest_routes(handler)
    app = Starlette(routes=all_routes, lifespan=lifespan)
    if overloaded is not None:
        app.add_middleware(OverloadMiddleware, check=overloaded)
    app.add_middleware(GuardMiddleware, token=token, max_body=max_body)  # outermost: auth and size first
    return app
