"""A bare a2a-sdk echo server, the baseline of ``podium bench footprint``: the SDK's ``DefaultRequestHandler``
with its in-memory task store and its JSON-RPC and HTTP+JSON routes on uvicorn, and an executor doing what
the echo agent does (task, ``working`` status, an artifact echoing the input, completed). Nothing of Podium
is imported. Run as ``python -m bench.bare_echo [--port N]``; prints ``bare echo ready: URL`` when serving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from importlib import resources
from pathlib import Path

import uvicorn
from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import AgentCard, AgentInterface, TaskState
from google.protobuf.json_format import ParseDict
from starlette.applications import Starlette

CARD = Path(str(resources.files("podium.cards") / "echo.json"))


class BareEcho(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.update_status(
            TaskState.TASK_STATE_WORKING,
            new_text_message("echoing", context_id=task.context_id, task_id=task.id),
        )
        await updater.add_artifact([new_text_part(context.get_user_input())], name="echo")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_echo")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", args.port))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    card = ParseDict(json.loads(CARD.read_text()), AgentCard(), ignore_unknown_fields=True)
    del card.supported_interfaces[:]
    card.supported_interfaces.append(
        AgentInterface(protocol_binding="JSONRPC", url=url, protocol_version="1.0")
    )
    handler = DefaultRequestHandler(BareEcho(), InMemoryTaskStore(), card)
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, rpc_url="/"),
        *create_rest_routes(handler),
    ]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes), log_level="warning", lifespan="off"))

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        print(f"bare echo ready: {url}", flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
