"""An outside A2A agent built on the bare a2a-sdk, nothing of Podium: it counts the words of a quoted text
and reverses their order. Its JSON-RPC endpoint requires its own bearer token (``WORDSMITH_TOKEN``), and
it appends the ``Authorization`` header of every call to ``--seen FILE``, so a test can check it never
got Podium's token. The guide (docs/outside-agents.md) shows this file.

Run: ``python -m tests.agents.wordsmith --port 9301 [--seen FILE]``
"""

from __future__ import annotations

import argparse
import os
import re

import uvicorn
from a2a.helpers.proto_helpers import new_data_part, new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types import AgentCard
from google.protobuf.json_format import ParseDict
from starlette.applications import Starlette
from starlette.responses import JSONResponse


def word_stats(text: str) -> dict[str, object]:
    """The words of the quoted part of ``text`` (or all of it): their count and their reversed order."""
    quoted = re.findall(r"[\"“'‘]([^\"”'’]+)[\"”'’]", text)
    words = re.findall(r"[\w'-]+", quoted[0] if quoted else text)
    return {"count": len(words), "reversed": " ".join(reversed(words))}


class Wordsmith(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        stats = word_stats(context.get_user_input())
        result = f"{stats['count']} words; reversed: {stats['reversed']}"
        await updater.add_artifact([new_text_part(result), new_data_part({**stats, "result": result})])
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


def card(url: str) -> AgentCard:
    return ParseDict(
        {
            "name": "wordsmith",
            "description": "Counts the words of a text and reverses their order.",
            "version": "1.0.0",
            "supportedInterfaces": [{"protocolBinding": "JSONRPC", "url": url, "protocolVersion": "1.0"}],
            "capabilities": {"streaming": False},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain", "application/json"],
            "securitySchemes": {"bearer": {"httpAuthSecurityScheme": {"scheme": "bearer"}}},
            "securityRequirements": [{"schemes": {"bearer": {"list": []}}}],
            "skills": [
                {
                    "id": "word-stats",
                    "name": "Word count and reversal",
                    "description": "Counts the words in a quoted text and reverses the order of the words.",
                    "tags": ["words", "count", "reverse", "text"],
                    "examples": ["Count the words in 'the quick brown fox' and reverse them"],
                }
            ],
        },
        AgentCard(),
    )


def _note(path: str, header: str) -> None:
    with open(path, "a") as out:
        out.write(header + "\n")


def app(url: str, token: str | None, seen: str | None) -> Starlette:
    agent_card = card(url)
    handler = DefaultRequestHandler(Wordsmith(), InMemoryTaskStore(), agent_card)
    inner = Starlette(
        routes=[*create_agent_card_routes(agent_card), *create_jsonrpc_routes(handler, rpc_url="/")]
    )

    async def guarded(scope, receive, send):  # type: ignore[no-untyped-def]
        """The card is public; every call needs ``Authorization: Bearer <WORDSMITH_TOKEN>``."""
        if scope["type"] == "http" and scope["method"] == "POST":
            given = dict(scope["headers"]).get(b"authorization", b"").decode()
            if seen:
                _note(seen, given)
            if token and given != f"Bearer {token}":
                response = JSONResponse({"error": "a bearer token is required"}, status_code=401)
                await response(scope, receive, send)
                return
        await inner(scope, receive, send)

    return guarded  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seen", default=None, help="append each call's Authorization header here")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    print(f"wordsmith ready: {url}", flush=True)
    uvicorn.run(
        app(url, os.environ.get("WORDSMITH_TOKEN") or None, args.seen),  # type: ignore[arg-type]
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
