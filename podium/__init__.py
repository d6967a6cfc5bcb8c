"""Podium: many A2A agents on one Redis Streams bus, with MCP tools and an orchestrator.

This module is the public API; every name in ``__all__`` is documented in ``docs/`` and kept stable.
Everything else (``podium.agents.*``, ``podium.bus.*``, ...) is internal and may change. Names load on
first use, so ``import podium`` stays cheap.

Writing an agent (see docs/agents.md): a module with ``build(ctx: AgentContext) -> AgentExecutor``.

- :class:`AgentContext`: what ``build`` gets: the agent's ``name``, ``card``, ``tools``, ``engine`` (or
  ``None`` offline) and ``config``.
- :class:`ToolBox` (``await ctx.tools.call("server__tool", {...})``), :class:`ToolSpec`,
  :class:`ToolResult` (errors are data: ``is_error``), :class:`NoTools`.
- Optional executor hooks: :class:`ProvidesRoutes`, :class:`RunsInBackground`, :class:`Closable`.
- The model: :class:`Engine` (the protocol every provider implements), :class:`Message`,
  :class:`Completion`, :class:`TextBlock`, :class:`ToolCall`, :class:`ToolResultBlock`, :class:`Usage`,
  :func:`run_tool_loop` (the model calls the agent's tools until it answers) and its
  :class:`LoopResult`, :class:`LLMError`, and :class:`ScriptedEngine` (a test double that replays
  scripted turns).

Embedding Podium or calling it:

- :func:`open_client` (an a2a-sdk ``Client`` for an agent, by URL over HTTP or by name over the bus),
  :func:`ask` (one message to the finished task), :func:`task_text`.
- Plans (a fixed workflow the orchestrator runs): :class:`Plan` and its steps :class:`TaskStep`,
  :class:`RouteStep`, :class:`ParallelStep`, :class:`VoteStep`, :class:`LoopStep`,
  :class:`DynamicStep`, with :class:`Call` and :class:`Gate`; :func:`parse_plan`, :func:`validate_plan`,
  :class:`PlanError`.
- The bus: :func:`connect` (Redis from ``REDIS_URL``, or the embedded in-process bus), :class:`Keys` (the
  key space under a namespace), :class:`BusClient` (this process's end of the bus), :class:`Registry`.
- Running agents in your own process: :class:`AgentRuntime` with :class:`RuntimeConfig`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # writing an agent
    "AgentContext": "podium.agents.host.context",
    "ToolBox": "podium.agents.host.tools",
    "ToolSpec": "podium.agents.host.tools",
    "ToolResult": "podium.agents.host.tools",
    "NoTools": "podium.agents.host.tools",
    "MountError": "podium.agents.host.tools",
    "ProvidesRoutes": "podium.agents.host.hooks",
    "RunsInBackground": "podium.agents.host.hooks",
    "Closable": "podium.agents.host.hooks",
    # the model
    "Engine": "podium.agents.llm.engine",
    "Message": "podium.agents.llm.messages",
    "Completion": "podium.agents.llm.messages",
    "TextBlock": "podium.agents.llm.messages",
    "ToolCall": "podium.agents.llm.messages",
    "ToolResultBlock": "podium.agents.llm.messages",
    "Usage": "podium.agents.llm.messages",
    "run_tool_loop": "podium.agents.llm.loop",
    "LoopResult": "podium.agents.llm.loop",
    "LLMError": "podium.agents.llm.errors",
    "ScriptedEngine": "podium.agents.llm.scripted",
    # calling agents
    "open_client": "podium.agents.client",
    "ask": "podium.agents.client",
    "task_text": "podium.agents.client",
    "AgentNotFoundError": "podium.agents.client",
    # plans
    "Plan": "podium.agents.orchestrator.plan",
    "TaskStep": "podium.agents.orchestrator.plan",
    "RouteStep": "podium.agents.orchestrator.plan",
    "ParallelStep": "podium.agents.orchestrator.plan",
    "VoteStep": "podium.agents.orchestrator.plan",
    "LoopStep": "podium.agents.orchestrator.plan",
    "DynamicStep": "podium.agents.orchestrator.plan",
    "Call": "podium.agents.orchestrator.plan",
    "Gate": "podium.agents.orchestrator.plan",
    "parse_plan": "podium.agents.orchestrator.plan",
    "validate_plan": "podium.agents.orchestrator.plan",
    "PlanError": "podium.agents.orchestrator.errors",
    # the bus and the registry
    "connect": "podium.bus.connection",
    "Keys": "podium.bus.keys",
    "BusClient": "podium.bus.a2a_client",
    "Registry": "podium.registry.store",
    # hosting agents
    "AgentRuntime": "podium.agents.host.runtime",
    "RuntimeConfig": "podium.agents.host.settings",
}

__all__ = [
    "AgentContext",
    "AgentNotFoundError",
    "AgentRuntime",
    "BusClient",
    "Call",
    "Closable",
    "Completion",
    "DynamicStep",
    "Engine",
    "Gate",
    "Keys",
    "LLMError",
    "LoopResult",
    "LoopStep",
    "Message",
    "MountError",
    "NoTools",
    "ParallelStep",
    "Plan",
    "PlanError",
    "ProvidesRoutes",
    "Registry",
    "RouteStep",
    "RunsInBackground",
    "RuntimeConfig",
    "ScriptedEngine",
    "TaskStep",
    "TextBlock",
    "ToolBox",
    "ToolCall",
    "ToolResult",
    "ToolResultBlock",
    "ToolSpec",
    "Usage",
    "VoteStep",
    "__version__",
    "ask",
    "connect",
    "open_client",
    "parse_plan",
    "run_tool_loop",
    "task_text",
    "validate_plan",
]

if TYPE_CHECKING:
    from podium.agents.client import AgentNotFoundError, ask, open_client, task_text
    from podium.agents.host.context import AgentContext
    from podium.agents.host.hooks import Closable, ProvidesRoutes, RunsInBackground
    from podium.agents.host.runtime import AgentRuntime
    from podium.agents.host.settings import RuntimeConfig
    from podium.agents.host.tools import MountError, NoTools, ToolBox, ToolResult, ToolSpec
    from podium.agents.llm.engine import Engine
    from podium.agents.llm.errors import LLMError
    from podium.agents.llm.loop import LoopResult, run_tool_loop
    from podium.agents.llm.messages import Completion, Message, TextBlock, ToolCall, ToolResultBlock, Usage
    from podium.agents.llm.scripted import ScriptedEngine
    from podium.agents.orchestrator.errors import PlanError
    from podium.agents.orchestrator.plan import (
        Call,
        DynamicStep,
        Gate,
        LoopStep,
        ParallelStep,
        Plan,
        RouteStep,
        TaskStep,
        VoteStep,
        parse_plan,
        validate_plan,
    )
    from podium.bus.a2a_client import BusClient
    from podium.bus.connection import connect
    from podium.bus.keys import Keys
    from podium.registry.store import Registry


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'podium' has no attribute {name!r}")
    value = globals()[name] = getattr(importlib.import_module(module), name)
    return value


def __dir__() -> list[str]:
    return __all__
