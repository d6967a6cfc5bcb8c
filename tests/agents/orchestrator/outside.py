"""An outside A2A agent, not part of Podium: a plain a2a-sdk server (JSON-RPC over HTTP only, no bus)
that converts units. The orchestrator tests register it with the registry by URL and check that it is
called over HTTP while Podium's own agents are called over the bus.

Run: ``python -m tests.agents.orchestrator.outside --port 8799``
"""

from __future__ import annotations

import argparse
import re

import uvicorn
from a2a.helpers.proto_helpers import new_data_part, new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from starlette.applications import Starlette

from podium.registry.cards import card_from_json

# unit -> (dimension, factor to the base unit)
UNITS = {
    "mile": ("length", 1609.344),
    "miles": ("length", 1609.344),
    "km": ("length", 1000.0),
    "kilometre": ("length", 1000.0),
    "kilometres": ("length", 1000.0),
    "kilometer": ("length", 1000.0),
    "kilometers": ("length", 1000.0),
    "metre": ("length", 1.0),
    "metres": ("length", 1.0),
    "meters": ("length", 1.0),
    "pound": ("mass", 0.45359237),
    "pounds": ("mass", 0.45359237),
    "lb": ("mass", 0.45359237),
    "kilogram": ("mass", 1.0),
    "kilograms": ("mass", 1.0),
    "kg": ("mass", 1.0),
}
_QUERY = re.compile(r"(-?\d+(?:\.\d+)?)\s*([a-z]+)\s+(?:to|in|into)\s+([a-z]+)", re.I)


def convert(text: str) -> tuple[float, str, str, float] | None:
    match = _QUERY.search(text)
    if not match:
        return None
    amount, src, dst = float(match.group(1)), match.group(2).lower(), match.group(3).lower()
    if src not in UNITS or dst not in UNITS or UNITS[src][0] != UNITS[dst][0]:
        return None
    return amount, src, dst, amount * UNITS[src][1] / UNITS[dst][1]


class Converter(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        found = convert(context.get_user_input())
        if found is None:
            await updater.reject(
                updater.new_agent_message([new_text_part("units: say e.g. '10 miles to km'")])
            )
            return
        amount, src, dst, value = found
        result = f"{amount:g} {src} is {value:.4f} {dst}"
        await updater.add_artifact(
            [new_text_part(result), new_data_part({"value": round(value, 4), "result": result})]
        )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


def card(url: str) -> dict[str, object]:
    return {
        "name": "Unit Converter",
        "description": "Converts amounts between units of length and mass.",
        "version": "1.0.0",
        "supportedInterfaces": [{"protocolBinding": "JSONRPC", "url": url, "protocolVersion": "1.0"}],
        "capabilities": {"streaming": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain", "application/json"],
        "skills": [
            {
                "id": "convert-units",
                "name": "Unit conversion",
                "description": "Converts an amount between units of length or mass: miles, kilometres, metres, "
                "pounds, kilograms. Convert miles to km, pounds to kg.",
                "tags": ["units", "conversion", "convert", "miles", "kilometres"],
                "examples": ["Convert 10 miles to km", "How many kilograms is 5 pounds?"],
            }
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    agent_card = card_from_json(card(url), source="outside agent", require_interfaces=True, key_name=False)
    handler = DefaultRequestHandler(Converter(), InMemoryTaskStore(), agent_card)
    app = Starlette(
        routes=[*create_agent_card_routes(agent_card), *create_jsonrpc_routes(handler, rpc_url="/")]
    )
    print(f"outside agent ready: {url}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
