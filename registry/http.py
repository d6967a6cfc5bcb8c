"""The registry's HTTP service for outside systems (Starlette).

    GET    /healthz                 200 when Redis answers, 503 otherwise
    GET    /agents[?skill=&tag=&q=&limit=&all=1]   agents with health and inbox backlog; with filters,
                                                 discovery results
    GET    /agents/{name}           the card JSON, exactly as an A2A client expects it (ETag, Last-Modified,
                                    Cache-Control; 304 to If-None-Match / If-Modified-Since)
    POST   /agents                  {"url": "..."} or {"card": {...}} [+ "name", "tokenEnv"]: register an outside agent
                                    (every URL in its card must name a public host, unless private URLs are allowed)
    DELETE /agents/{name}           remove an agent

Writes need ``Authorization: Bearer <token>`` when a token is configured; without one they are accepted only from
loopback clients. Errors are ``{"error": {"code", "message"}}`` with a 4xx/5xx status, and a failed write changes
nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import anyio
import httpx
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from podium.bus.connection import is_loopback
from podium.registry import errors
from podium.registry.card_http import REGISTRY_CARD_MAX_AGE_S, card_response
from podium.registry.cards import MAX_CARD_BYTES, card_from_json, card_to_dict, registry_name
from podium.registry.fetch import DEFAULT_TIMEOUT, check_card_urls, fetch_card
from podium.registry.store import Registry

logger = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 30.0
CHECK_ENV = "PODIUM_OUTSIDE_CHECK_S"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

_STATUS: list[tuple[type[errors.RegistryError], int]] = [
    (errors.UrlNotAllowed, 400),
    (errors.UpstreamUnreachable, 502),
    (errors.UpstreamTimeout, 504),
    (errors.UpstreamTooLarge, 413),
    (errors.NotAnAgentCard, 422),
    (errors.CardError, 400),
    (errors.SigningKeyError, 400),
    (errors.SignatureError, 403),
    (errors.AgentNotFound, 404),
    (errors.NameTaken, 409),
]


@dataclass
class Settings:
    """What the service is allowed to do."""

    token: str | None = None
    allow_private_urls: bool = False
    fetch_timeout: float = DEFAULT_TIMEOUT
    max_card_bytes: int = MAX_CARD_BYTES
    # how often outside agents' cards are fetched again (0: never)
    health_interval_s: float = HEALTH_INTERVAL_S

    @classmethod
    def from_env(cls, *, allow_private_urls: bool = False, **given: Any) -> Settings:
        """Settings with the token from ``PODIUM_REGISTRY_TOKEN`` and the outside agents' check interval from
        ``PODIUM_OUTSIDE_CHECK_S``. Raises ``ValueError`` for an interval that is not a number."""
        raw = os.environ.get(CHECK_ENV) or ""
        try:
            interval = float(raw) if raw.strip() else HEALTH_INTERVAL_S
        except ValueError:
            raise ValueError(f"{CHECK_ENV}: expected seconds between checks, got {raw!r}") from None
        token = os.environ.get("PODIUM_REGISTRY_TOKEN") or None
        return cls(token=token, allow_private_urls=allow_private_urls, health_interval_s=interval, **given)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _from_exception(exc: errors.RegistryError) -> JSONResponse:
    status = next((s for cls, s in _STATUS if isinstance(exc, cls)), 400)
    return error(status, exc.code, exc.message)


def create_app(
    registry: Registry, settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """The registry app. ``registry`` holds the caller's Redis client; ``transport`` replaces the network for
    outbound card fetches (tests)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # trust_env=False: a proxy from the environment would hide the address actually connected to.
        async with httpx.AsyncClient(
            transport=transport, timeout=settings.fetch_timeout, trust_env=False
        ) as client:
            app.state.http = client
            async with anyio.create_task_group() as tg:
                if settings.health_interval_s > 0:
                    tg.start_soon(_check_outside, registry, client, settings)
                yield
                tg.cancel_scope.cancel()

    async def healthz(request: Request) -> Response:
        try:
            await registry.redis.ping()
        except (RedisError, OSError) as exc:
            return error(503, "redis_unavailable", f"Redis is not answering: {type(exc).__name__}")
        return JSONResponse({"status": "ok", "namespace": registry.keys.namespace})

    async def list_agents(request: Request) -> Response:
        q = request.query_params
        skill, tag, text = q.get("skill") or None, q.get("tag") or None, q.get("q") or None
        try:
            limit = int(q.get("limit", "50"))
        except ValueError:
            return error(400, "bad_request", "limit: expected an integer")
        if skill or tag or text:
            matches = await registry.find(skill=skill, tag=tag, text=text, limit=limit)
            queued = await registry.with_queues([m.entry for m in matches])
            return JSONResponse(
                {"agents": [replace(m, entry=e).to_dict() for m, e in zip(matches, queued, strict=True)]}
            )
        include_down = q.get("all", "").lower() in ("1", "true", "yes")
        entries = await registry.with_queues(
            (await registry.list(include_down=include_down))[: max(0, limit)]
        )
        return JSONResponse({"agents": [e.to_dict() for e in entries]})

    async def get_agent(request: Request) -> Response:
        name = request.path_params["name"]
        entry = await registry.entry(name, include_down=True)
        if entry is None:
            return error(404, "not_found", f"no agent named {name!r} is registered")
        if not entry.discoverable:
            return error(404, "not_found", f"agent {name!r} is registered but no instance is alive")
        return card_response(
            request, card_to_dict(entry.card), last_modified=entry.registered, max_age=REGISTRY_CARD_MAX_AGE_S
        )

    async def post_agent(request: Request) -> Response:
        denied = _authorize(request, settings.token)
        if denied is not None:
            return denied
        body = await _read_json(request, settings.max_card_bytes + 4096)
        if isinstance(body, Response):
            return body
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            return error(400, "bad_request", "name: expected a string")
        token_env = body.get("tokenEnv")
        if token_env is not None and not (isinstance(token_env, str) and ENV_NAME.match(token_env)):
            return error(
                400, "bad_request", "tokenEnv: the name of an environment variable, e.g. MY_AGENT_TOKEN"
            )
        try:
            if "url" in body and "card" not in body:
                if not isinstance(body["url"], str):
                    return error(400, "bad_request", "url: expected a string")
                card, source = await fetch_card(
                    request.app.state.http,
                    body["url"],
                    allow_private=settings.allow_private_urls,
                    time_limit=settings.fetch_timeout,
                    max_bytes=settings.max_card_bytes,
                )
            elif "card" in body and "url" not in body:
                card = card_from_json(body["card"], source="card", key_name=False)
                await check_card_urls(
                    card, allow_private=settings.allow_private_urls, time_limit=settings.fetch_timeout
                )
                source = None
            else:
                return error(400, "bad_request", 'expected {"url": "https://..."} or {"card": {...}}')
            stored = await registry.register_static(
                card, name=name or registry_name(card.name), url=source, token_env=token_env
            )
            if source is not None:
                await registry.record_health(stored, True)
        except errors.RegistryError as exc:
            return _from_exception(exc)
        logger.info("registered outside agent %r from %s", stored, source or "posted card")
        entry = await registry.entry(stored, include_down=True)
        return JSONResponse(entry.to_dict() if entry else {"name": stored}, status_code=201)

    async def delete_agent(request: Request) -> Response:
        denied = _authorize(request, settings.token)
        if denied is not None:
            return denied
        name = request.path_params["name"]
        if not await registry.remove(name):
            return error(404, "not_found", f"no agent named {name!r} is registered")
        return JSONResponse({"removed": name})

    async def on_redis_error(request: Request, exc: Exception) -> Response:
        logger.warning("Redis error serving %s %s: %s", request.method, request.url.path, exc)
        return error(503, "redis_unavailable", "the registry's Redis is not answering")

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/agents", list_agents, methods=["GET"]),
        Route("/agents", post_agent, methods=["POST"]),
        Route("/agents/{name}", get_agent, methods=["GET"]),
        Route("/agents/{name}", delete_agent, methods=["DELETE"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={RedisError: on_redis_error})


async def _check_outside(registry: Registry, client: httpx.AsyncClient, settings: Settings) -> None:
    """Fetch each outside agent's card again every ``health_interval_s``, by the same admission rules as
    when it was added, and record whether it answered (``podium agents`` and the console show it)."""
    while True:
        await anyio.sleep(settings.health_interval_s)
        try:
            for entry in await registry.list():
                if not entry.static or not entry.url:
                    continue
                try:
                    await fetch_card(
                        client,
                        entry.url,
                        allow_private=settings.allow_private_urls,
                        time_limit=settings.fetch_timeout,
                        max_bytes=settings.max_card_bytes,
                    )
                    await registry.record_health(entry.name, True)
                except errors.RegistryError as exc:
                    logger.warning("outside agent %r did not serve its card: %s", entry.name, exc.message)
                    await registry.record_health(entry.name, False, exc.message)
        except (RedisError, OSError) as exc:
            logger.warning("could not check outside agents: %s", exc)


def _authorize(request: Request, token: str | None) -> Response | None:
    if token is None:
        host = request.client.host if request.client else ""
        if is_loopback(host):
            return None
        return error(
            403,
            "token_required",
            "writes from other hosts need PODIUM_REGISTRY_TOKEN set on the registry (and sent as a bearer token)",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    challenge = 'Bearer realm="podium-registry"'
    if scheme.lower() != "bearer" or not given.strip():
        return error(
            401, "missing_token", "send 'Authorization: Bearer <token>'", {"WWW-Authenticate": challenge}
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return error(
            401,
            "invalid_token",
            "the bearer token is not the registry's token",
            {"WWW-Authenticate": f'{challenge}, error="invalid_token"'},
        )
    return None


async def _read_json(request: Request, limit: int) -> dict[str, Any] | Response:
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return error(413, "too_large", f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return error(400, "bad_json", f"request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, "bad_request", 'expected a JSON object: {"url": "..."} or {"card": {...}}')
    return body
