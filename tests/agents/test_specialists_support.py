"""Shared helpers for the specialist tests (no tests here): a specialist's executor behind a real
``DefaultRequestHandler`` with the real MCP servers mounted in process, and readers for its answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from a2a.helpers.proto_helpers import get_data_parts, new_data_part, new_text_message
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore
from a2a.types.a2a_pb2 import Message, Role, SendMessageRequest, Task, TaskState

from podium.agents.host.config import McpServerConfig, load_config
from podium.agents.host.context import AgentContext
from podium.agents.host.executors import load_executor
from podium.agents.host.mounting import MountedTools
from podium.bus.keys import Keys
from podium.registry.cards import load_card

CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
# Maps whose keys are not Podium's: the analyst's `arguments` are the calc tool's own parameters, as sent.
VERBATIM = frozenset({"arguments"})


def assert_camel(value: Any, where: str = "data") -> None:
    """Every key in a data part, at any depth, is camelCase (A2A's JSON convention)."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert CAMEL.match(key), f"{where}.{key} is not camelCase"
            if key not in VERBATIM:
                assert_camel(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_camel(item, f"{where}[{i}]")


@dataclass
class Harness:
    handler: DefaultRequestHandler
    tools: MountedTools
    ctx: AgentContext

    async def ask(
        self, text: str, data: dict[str, Any] | None = None, *, context_id: str = "", **metadata: Any
    ) -> Task:
        """Send one message and return the finished task."""
        result = await self.handler.on_message_send(request(text, data, context_id=context_id, **metadata),
                                                    ServerCallContext())  # fmt: skip
        assert isinstance(result, Task), result
        return result


def request(
    text: str, data: dict[str, Any] | None = None, *, context_id: str = "", **metadata: Any
) -> SendMessageRequest:
    message: Message = new_text_message(text, role=Role.ROLE_USER)
    if data is not None:
        message.parts.append(new_data_part(data))
    if context_id:
        message.context_id = context_id
    if metadata:
        message.metadata.update(metadata)
    return SendMessageRequest(message=message)


def in_process(agent: str) -> list[McpServerConfig]:
    """The agent's configured servers, each run inside the test process (same tools, same allowlists)."""
    return [
        McpServerConfig(name=cfg.name, in_process=cfg.name, allow=cfg.allow, timeout_s=cfg.timeout_s)
        for cfg in load_config(agent).mcp
    ]


@asynccontextmanager
async def specialist(name: str, *, engine: Any = None) -> AsyncIterator[Harness]:
    """``name``'s executor, built by the runtime's own loader, with its MCP servers mounted in process."""
    async with MountedTools(in_process(name), agent=name) as tools:
        card = load_card(name)
        ctx = AgentContext(name=name, card=card, redis=None, keys=Keys("unused"), tools=tools, engine=engine)
        handler = DefaultRequestHandler(load_executor(ctx), InMemoryTaskStore(), card)
        try:
            yield Harness(handler, tools, ctx)
        finally:
            await handler.aclose()


@pytest.fixture
def board_env(monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str) -> str:
    """The in-process blackboard server reads REDIS_URL and PODIUM_NAMESPACE: point them at the test Redis."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("PODIUM_NAMESPACE", namespace)
    return namespace


def answer(task: Task) -> tuple[dict[str, Any], str]:
    """(data part, text part) of a completed task's one artifact."""
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, (task.status, task.status.message)
    [artifact] = task.artifacts
    [data] = get_data_parts(artifact.parts)
    text = "\n".join(p.text for p in artifact.parts if p.HasField("text"))
    assert_camel(data)
    return data, text


def rejection(task: Task) -> dict[str, Any]:
    """The reason data of a rejected task (and no artifact)."""
    assert task.status.state == TaskState.TASK_STATE_REJECTED, task.status
    assert not task.artifacts
    [data] = get_data_parts(task.status.message.parts)
    assert any(p.text for p in task.status.message.parts)
    assert_camel(data)
    return data
