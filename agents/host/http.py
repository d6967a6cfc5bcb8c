"""An agent's A2A HTTP surface: card, JSON-RPC and HTTP+JSON routes over its request handler, plus
``/healthz``, optional bearer-token auth, a request size limit, and the refusal of new work while the
agent is over capacity. A thin adapter, like the bus side.

Requests the guard refuses before the SDK sees them (no token, too large, not UTF-8) get the error in the
shape of the binding they were sent to: a JSON-RPC error object on ``POST /``, a ``google.rpc.Status``-style
``{"error": {"code", "status", "message", "details"}}`` (as a2a-sdk's HTTP+JSON routes answer) elsewhere.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
from a2a.types.a2a_pb2 import AgentCard
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, SimpleUser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from podium.agents.host.auth import Credentials
from podium.bus.backpressure import AgentOverloaded, jsonrpc_error, rest_error, retry_after_header
from podium.registry.card_http import AGENT_CARD_MAX_AGE_S, card_etag, card_response

logger = logging.getLogger(__name__)

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
FOREIGN_HOST = Refusal(421, -32600, 421, "PERMISSION_DENIED", "HOST_NOT_ALLOWED")
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
    """Refuses, in the binding's own error shape: requests without a valid credential when any is configured
    (401), bodies over ``max_body`` bytes whether announced or chunked (413), and bodies that are not UTF-8
    (parse error). The body is read here, within the limit, and handed on whole. An authenticated caller is
    put in ``scope["user"]``/``scope["auth"]``, where a2a-sdk's context builder finds it (task ownership)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None = None,
        max_body: int,
        credentials: Credentials | None = None,
        loopback_hosts: frozenset[str] | None = None,
    ) -> None:
        self.app = app
        self.credentials = credentials if credentials is not None else Credentials(token=token)
        self.max_body = max_body
        self.loopback_hosts = loopback_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        json_rpc = scope["path"] == RPC_PATH and scope["method"] == "POST"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.loopback_hosts is not None and not _loopback_host(
            headers.get("host", ""), self.loopback_hosts
        ):
            # A page on another site whose name now resolves to 127.0.0.1 (DNS rebinding) sends its own name.
            message = (
                f"Misdirected request: this agent listens on loopback and does not answer to Host "
                f"{headers.get('host', '')!r}; call it as 127.0.0.1 or localhost, or set PODIUM_PUBLIC_URL"
            )
            await refusal_response(FOREIGN_HOST, message, json_rpc=json_rpc)(scope, receive, send)
            return
        if self.credentials.required and scope["path"] not in PUBLIC_PATHS:
            caller = await self._caller(headers)
            if caller is None:
                response = refusal_response(
                    UNAUTHENTICATED,
                    "Unauthenticated: send 'Authorization: Bearer <token>' (PODIUM_A2A_TOKEN, or a "
                    "client's token from `podium clients add`)",
                    json_rpc=json_rpc,
                    headers={"WWW-Authenticate": 'Bearer realm="podium"'},
                )
                await response(scope, receive, send)
                return
            scope["user"] = SimpleUser(caller.name)
            scope["auth"] = AuthCredentials(sorted(caller.scopes))
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

    async def _caller(self, headers: dict[str, str]) -> Any:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        # Only the bearer scheme the card declares; tokens are compared in constant time.
        if scheme.lower() != "bearer":
            return None
        return await self.credentials.authenticate(value.strip())


def _loopback_host(header: str, extra: frozenset[str]) -> bool:
    """Whether a ``Host`` header names this machine's loopback (``localhost``, ``127.x``, ``[::1]``) or one of
    ``extra`` (e.g. the host of ``PODIUM_PUBLIC_URL``)."""
    import ipaddress

    host = header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host in ("localhost", *extra) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
            # the guard in front already read the body (within the size limit) and replays it
            body, receive = await _buffered(receive)
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
        # Counted until the response's last body part goes out, not until the app returns: a caller that
        # has its whole answer may send the next request before the app's own return is scheduled.
        self.in_flight += 1
        counted = True

        def finish() -> None:
            nonlocal counted
            if counted:
                counted = False
                self.in_flight -= 1

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finish()
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            finish()


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
    # The card may change while the agent runs (the orchestrator's workflow skills): serve its current form.
    served: dict[str, Any] = {"raw": b"", "modified": modified}

    def current() -> dict[str, Any]:
        raw = card.SerializeToString(deterministic=True)
        if raw != served["raw"]:
            body = agent_card_to_dict(card)
            if served["raw"]:
                served["modified"] = time.time()
            served.update(raw=raw, body=body, etag=card_etag(body))
        return served

    current()

    async def agent_card(request: Request) -> Response:
        now = current()
        return card_response(
            request, now["body"], last_modified=now["modified"], max_age=max_age, etag=now["etag"]
        )

    return Route(AGENT_CARD_WELL_KNOWN_PATH, agent_card, methods=["GET"])


def build_app(
    card: AgentCard,
    handler: RequestHandler,
    *,
    token: str | None = None,
    credentials: Credentials | None = None,
    loopback_hosts: frozenset[str] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    health: Health | None = None,
    lifespan: Any = None,
    routes: list[Any] | None = None,
    overloaded: OverloadCheck | None = None,
    card_modified: float | None = None,
) -> Starlette:
    """The Starlette app serving one agent over JSON-RPC (POST /) and HTTP+JSON (/message:send ...).

    ``credentials`` (or just ``token``) are what callers must present; with ``loopback_hosts`` (an agent bound
    to loopback) a request whose ``Host`` names neither loopback nor one of them is refused (421); ``health`` returns the ``/healthz`` body; any ``status`` but ``"ok"`` is answered with 503.
    ``card_modified`` (Unix time, default now) is the card's ``Last-Modified``. ``routes`` are added
    (an executor's own). With ``overloaded``, new work is refused while it returns an error (see
    :class:`OverloadMiddleware`).
    """

    async def healthz(request: Request) -> Response:
        body = {"status": "ok", "agent": card.name, **(await health() if health else {})}
        status = 200 if body["status"] == "ok" else 503
        return Response(json.dumps(body), status_code=status, media_type="application/json")

    all_routes: list[Any] = [Route("/healthz", healthz, methods=["GET"]), *(routes or [])]
    all_routes.append(card_route(card, modified=time.time() if card_modified is None else card_modified))
    all_routes += create_jsonrpc_routes(handler, rpc_url=RPC_PATH)
    # Last: the HTTP+JSON routes include a catch-all tenant mount.
    all_routes += create_rest_routes(handler)
    app = Starlette(routes=all_routes, lifespan=lifespan)
    if overloaded is not None:
        app.add_middleware(OverloadMiddleware, check=overloaded)
    app.add_middleware(
        GuardMiddleware,
        credentials=credentials or Credentials(token=token),
        max_body=max_body,
        loopback_hosts=loopback_hosts,
    )  # outermost: auth and size first
    return app
