"""Real HTTP servers for the registry tests: uvicorn in a task, a real a2a-sdk agent, and misbehaving upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn
from a2a.helpers.proto_helpers import new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCard, Role
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from podium.registry.cards import card_from_json
from tests.support import free_port


@asynccontextmanager
async def serve(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Run ``app`` on uvicorn on a (free) loopback port in a task; yields its base URL, stops it on exit."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            while True:
                if server.started:
                    break
                await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


class Hello(AgentExecutor):
    """A trivial agent: answers every message with one text message."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        await event_queue.enqueue_event(
            new_text_message(f"hello: {context.get_user_input()}", role=Role.ROLE_AGENT)
        )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        return None


# A global address, written as a literal: the tests run offline, and a registry that refuses private URLs
# resolves every host in a posted card.
PUBLIC_URL = "https://93.184.215.14"


def hello_card(base_url: str, provider_url: str = "https://elsewhere.example") -> AgentCard:
    return card_from_json(
        {
            "name": "Hello Agent",
            "description": "An outside A2A agent that greets people.",
            "version": "2.0.0",
            "provider": {"organization": "Elsewhere", "url": provider_url},
            "capabilities": {"streaming": False},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain"],
            "supportedInterfaces": [
                {"url": base_url + "/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
            ],
            "skills": [
                {
                    "id": "greet",
                    "name": "Greeting",
                    "description": "Greets the user by name in a friendly way.",
                    "tags": ["greeting", "hello"],
                    "examples": ["say hello to Ada"],
                }
            ],
        },
        key_name=False,
    )


def a2a_agent_app(port_url: str) -> Starlette:
    """A real a2a-sdk agent server: card routes plus JSON-RPC over a DefaultRequestHandler."""
    card = hello_card(port_url)
    handler = DefaultRequestHandler(Hello(), InMemoryTaskStore(), card)
    return Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/")])


@asynccontextmanager
async def a2a_agent() -> AsyncIterator[str]:
    """Serve :func:`a2a_agent_app`; the card names the URL it is served on."""
    port = free_port()
    async with serve(a2a_agent_app(f"http://127.0.0.1:{port}"), port) as url:
        yield url


def bad_upstream_app(release: anyio.Event, agent_url: str = "") -> Starlette:
    """Upstreams that misbehave in every way the registry must survive."""

    async def slow(request: Request) -> Response:
        await release.wait()  # longer than any fetch timeout; released at teardown
        return JSONResponse({})

    async def huge_streamed(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            for _ in range(40):
                yield b"x" * 16384
            yield b'"}'

        return StreamingResponse(chunks(), media_type="application/json")

    async def huge_declared(request: Request) -> Response:
        return Response(b" " * (300 * 1024), media_type="application/json")

    async def html(request: Request) -> Response:
        return Response("<html>hi</html>", media_type="text/html")

    async def not_json(request: Request) -> Response:
        return Response("{nope", media_type="application/json")

    async def not_card(request: Request) -> Response:
        return JSONResponse({"hello": "world"})

    async def cardless_skills(request: Request) -> Response:
        return JSONResponse(
            {
                "name": "Broken",
                "description": "no skills",
                "version": "1",
                "capabilities": {},
                "defaultInputModes": ["text/plain"],
                "defaultOutputModes": ["text/plain"],
                "supportedInterfaces": [
                    {"url": "http://x/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
                ],
            }
        )

    async def missing(request: Request) -> Response:
        return JSONResponse({"detail": "not here"}, status_code=404)

    async def redirect(request: Request) -> Response:
        return Response(status_code=302, headers={"Location": agent_url + "/.well-known/agent-card.json"})

    well_known = "/.well-known/agent-card.json"
    return Starlette(
        routes=[
            Route(f"/slow{well_known}", slow),
            Route(f"/huge{well_known}", huge_streamed),
            Route(f"/declared{well_known}", huge_declared),
            Route(f"/html{well_known}", html),
            Route(f"/notjson{well_known}", not_json),
            Route(f"/notcard{well_known}", not_card),
            Route(f"/noskills{well_known}", cardless_skills),
            Route(f"/missing{well_known}", missing),
            Route(f"/moved{well_known}", redirect),
        ]
    )
