"""What an agent's executor is built from. The runtime (``podium agent NAME``) fills this in and calls the
agent module's ``build(ctx) -> AgentExecutor``; executors never create Redis clients or HTTP servers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from a2a.types import AgentCard

from podium.agents.host.tools import NoTools, ToolBox
from podium.bus.keys import Keys


@dataclass
class AgentContext:
    name: str
    card: AgentCard
    redis: Any  # redis.asyncio client (real or embedded); shared state such as the blackboard
    keys: Keys
    tools: ToolBox = field(default_factory=NoTools)
    engine: Any = None  # an agents.llm Engine, or None for offline mode
    config: dict[str, Any] = field(default_factory=dict)

    def engine_for(self, role: str) -> Any:
        """The engine for one of the agent's roles (the orchestrator's ``planner``, ``synthesis``):
        what the agent's ``llm`` config sets for it, else :attr:`engine`."""
        engines = self.config.get("engines")
        return engines.for_role(role) if engines is not None else self.engine
