"""The console's Starlette app: the page (static files shipped in the package), a JSON API and
Server-Sent Events feeds, all read from Redis.

Security: the page itself (HTML, JS, CSS) holds no data and is served to anyone who can reach the port;
every ``/api`` request needs the token, when one is configured, as ``Authorization: Bearer <token>``
(a header, never a cookie, so another site's page cannot use it). Without a token the console is read
only: replay and ask are refused. On a loopback address, requests naming another host are refused, so a
DNS-rebinding page cannot reach the API either.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from podium.agents.console import data
from podium.agents.console.asker import MAX_QUESTION, Asker, AskError
from podium.agents.console.live import Feeds
from podium.agents.console.live import event as live_event
from podium.bus.connection import is_loopback
from podium.bus.keys import Keys, validate_name
from podium.bus.streams import StreamBus

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
TOKEN_ENV = "PODIUM_CONSOLE_TOKEN"
DEFAULT_PORT = 8790
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


@dataclass
class Settings:
    """``token``: required on every API request when set; without one, replay and ask are refused.
    ``host``: the bind address (a loopback one turns on the Host check). ``orchestrator_url``: where
    Ask sends questions (default: the orchestrator's card in the registry)."""

    token: str | None = None
    host: str = "127.0.0.1"
    orchestrator_url: str | None = None
    a2a_token: str | None = None
    wake_s: float = 1.0


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


class Guard:
    """Checks the Host header (on loopback) and the token (on ``/api``), and adds security headers."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.loopback = is_loopback(settings.host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal: JSONResponse | None = None
        if self.loopback and not is_loopback(_hostname(headers.get("host", ""))):
            refusal = _error(403, "forbidden_host", "this console answers only to a loopback host name")
        elif scope["path"].startswith("/api/") and self.settings.token:
            given = headers.get("authorization", "")
            expected = f"Bearer {self.settings.token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                refusal = _error(401, "unauthorized", "this console needs its token")
        if refusal is not None:
            refusal.headers["WWW-Authenticate"] = "Bearer"
            await refusal(scope, receive, _with_headers(send))
            return
        await self.app(scope, receive, _with_headers(send))


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _with_headers(send: Send) -> Send:
    async def sending(message: Any) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
        await send(message)

    return sending


def create_app(redis: Any, keys: Keys, settings: Settings | None = None) -> Starlette:
    """The console for the namespace ``keys`` on ``redis`` (closed by whoever passed it in)."""
    settings = settings or Settings()
    feeds = Feeds(redis, keys, wake_s=settings.wake_s)
    bus = StreamBus(redis, keys)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        asker = Asker(redis, keys, url=settings.orchestrator_url, a2a_token=settings.a2a_token)
        state["asker"] = asker
        try:
            async with anyio.create_task_group() as tg:
                state["tg"] = tg
                yield
                tg.cancel_scope.cancel()
        finally:
            await asker.aclose()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def info(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "namespace": keys.namespace,
                "writable": bool(settings.token),
                "tokenRequired": bool(settings.token),
            }
        )

    async def agents(request: Request) -> JSONResponse:
        counts = await data.dead_letter_counts(bus)
        return JSONResponse({"agents": await data.agents(redis, keys), "deadLetters": counts})

    async def tasks(request: Request) -> JSONResponse:
        rows = await data.tasks(redis, keys)
        state_filter, agent_filter = request.query_params.get("state"), request.query_params.get("agent")
        rows = [r for r in rows if (not state_filter or r["state"] == state_filter)]
        rows = [r for r in rows if (not agent_filter or r["agent"] == agent_filter)]
        return JSONResponse({"tasks": rows})

    async def task(request: Request) -> JSONResponse:
        task_id = request.path_params["task_id"]
        found = await data.task(redis, keys, task_id)
        if found is None:
            return _error(404, "not_found", f"no task {task_id}")
        return JSONResponse(found)

    async def dead_letters(request: Request) -> JSONResponse:
        agent = request.path_params["agent"]
        try:
            validate_name("agent", agent)
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        letters = await bus.dlq_list(agent, count=200)
        return JSONResponse({"agent": agent, "deadLetters": [data.letter(d) for d in letters]})

    def _writable() -> JSONResponse | None:
        if settings.token:
            return None
        return _error(
            403,
            "read_only",
            f"this console is read only: start it with --token (or {TOKEN_ENV}) to replay, ask and approve",
        )

    async def _json_body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise ValueError(f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        return body

    async def replay(request: Request) -> JSONResponse:
        if (refused := _writable()) is not None:
            return refused
        agent = request.path_params["agent"]
        try:
            validate_name("agent", agent)
            body = await _json_body(request)
            ids = body.get("ids")
            if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
                raise ValueError("ids: give a list of dead-letter entry ids, or leave it out to replay all")
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        replayed = await bus.dlq_replay(agent, ids)
        return JSONResponse({"agent": agent, "replayed": replayed})

    async def ask(request: Request) -> JSONResponse:
        if (refused := _writable()) is not None:
            return refused
        try:
            body = await _json_body(request)
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        question = body.get("text")
        if not isinstance(question, str) or not question.strip():
            return _error(400, "bad_request", "text: give the question as a non-empty string")
        if len(question) > MAX_QUESTION:
            return _error(400, "bad_request", f"text: at most {MAX_QUESTION} characters")
        try:
            task_id = await state["asker"].ask(question.strip(), state["tg"])
        except AskError as exc:
            return _error(exc.status, "ask_failed", str(exc))
        return JSONResponse({"taskId": task_id}, 202)

    async def answer(request: Request) -> JSONResponse:
        """Approve, reject or edit what a task waiting in input-required asks, on the task itself."""
        if (refused := _writable()) is not None:
            return refused
        task_id = request.path_params["task_id"]
        try:
            body = await _json_body(request)
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        decision, instruction = body.get("decision"), str(body.get("instruction") or "").strip()
        if decision not in ("approve", "reject", "edit"):
            return _error(400, "bad_request", "decision: one of approve, reject, edit")
        if decision == "edit" and not instruction:
            return _error(400, "bad_request", "instruction: an edit needs the new instruction")
        if len(instruction) > MAX_QUESTION:
            return _error(400, "bad_request", f"instruction: at most {MAX_QUESTION} characters")
        found = await data.task(redis, keys, task_id, trace=False)
        if found is None:
            return _error(404, "not_found", f"no task {task_id}")
        if found["approval"] is None:
            return _error(
                409, "not_waiting", f"task {task_id} is {found['state']}, not waiting for an approval"
            )
        try:
            await state["asker"].answer(task_id, found["contextId"], decision, instruction, state["tg"])
        except AskError as exc:
            return _error(exc.status, "answer_failed", str(exc))
        return JSONResponse({"taskId": task_id, "decision": decision}, 202)

    async def guarded(feed: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The feed until Redis fails; then an ``error`` event, and the page reconnects."""
        try:
            async for chunk in feed:
                yield chunk
        except RedisError as exc:
            yield live_event("error", {"message": f"Redis did not answer: {exc}"})

    def stream(feed: AsyncIterator[bytes]) -> StreamingResponse:
        headers = {"X-Accel-Buffering": "no"}
        return StreamingResponse(guarded(feed), media_type="text/event-stream", headers=headers)

    async def agents_feed(request: Request) -> Response:
        return stream(feeds.agents())

    async def tasks_feed(request: Request) -> Response:
        return stream(feeds.tasks())

    async def task_feed(request: Request) -> Response:
        return stream(feeds.task(request.path_params["task_id"]))

    async def redis_down(request: Request, exc: Exception) -> Response:
        return _error(503, "redis_unavailable", f"Redis did not answer: {exc}")

    routes = [
        Route("/", index),
        Route("/healthz", lambda request: JSONResponse({"ok": True})),
        Route("/api/info", info),
        Route("/api/agents", agents),
        Route("/api/tasks", tasks),
        Route("/api/tasks/{task_id}", task),
        Route("/api/dlq/{agent}", dead_letters),
        Route("/api/dlq/{agent}/replay", replay, methods=["POST"]),
        Route("/api/ask", ask, methods=["POST"]),
        Route("/api/tasks/{task_id}/answer", answer, methods=["POST"]),
        Route("/api/events/agents", agents_feed),
        Route("/api/events/tasks", tasks_feed),
        Route("/api/events/tasks/{task_id}", task_feed),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={RedisError: redis_down})
    app.add_middleware(Guard, settings=settings)  # type: ignore[arg-type]
    return app
