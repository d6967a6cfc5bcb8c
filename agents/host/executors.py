"""Which module builds an agent's executor, and building it."""

from __future__ import annotations

import importlib

from a2a.server.agent_execution import AgentExecutor

from podium.agents.host.context import AgentContext

# agent name -> module with ``build(ctx: AgentContext) -> AgentExecutor``
EXECUTORS: dict[str, str] = {
    "echo": "podium.agents.specialists.echo",
    "researcher": "podium.agents.specialists.researcher",
    "analyst": "podium.agents.specialists.analyst",
    "writer": "podium.agents.specialists.writer",
    "reviewer": "podium.agents.specialists.reviewer",
    "orchestrator": "podium.agents.orchestrator",
}


def executor_module(name: str) -> str:
    """The module that builds agent ``name``'s executor: the one its config names (``"executor"``), else
    Podium's own. Raises ``LookupError`` for an agent with none, ``AgentConfigError`` for a bad config."""
    from podium.agents.host.config import load_config

    module_name = load_config(name).executor or EXECUTORS.get(name)
    if module_name is None:
        raise LookupError(
            f"no executor for agent {name!r}; known agents: {', '.join(sorted(EXECUTORS))}, "
            f'or name a module in agents/config/{name}.json ("executor")'
        )
    return module_name


def load_executor(ctx: AgentContext) -> AgentExecutor:
    """Build the executor for ``ctx.name``. Raises ``LookupError`` for an agent with no executor."""
    module = importlib.import_module(executor_module(ctx.name))
    return module.build(ctx)
