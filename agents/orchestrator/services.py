"""What one orchestration (a :class:`~podium.agents.orchestrator.session.Session`) uses, handed to it
by the orchestrator's executor: its state stores, the ways it delegates, plans and answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.delegate import Delegator
from podium.agents.orchestrator.dispatch import Policy
from podium.agents.orchestrator.planning import Planner
from podium.agents.orchestrator.settings import OrchestratorSettings
from podium.agents.orchestrator.state.breakers import BreakerStore
from podium.agents.orchestrator.state.checkpoints import CheckpointStore
from podium.agents.orchestrator.state.leases import LeaseStore
from podium.agents.orchestrator.state.trace import TraceLog
from podium.agents.orchestrator.synth import Answer, Material
from podium.agents.orchestrator.workflows import WorkflowStore
from podium.registry.store import Registry


@dataclass
class Services:
    """``name``: the orchestrator agent's own name (left out of the catalog it plans over).
    ``synthesise`` writes the answer; ``task_state`` reads a task's stored A2A state;
    ``open_trace`` opens a task's trace; ``ping`` returns once Redis answers again (raises if not)."""

    name: str
    settings: OrchestratorSettings
    registry: Registry
    checkpoints: CheckpointStore
    leases: LeaseStore
    breakers: BreakerStore
    delegator: Delegator
    policy: Policy
    planner: Planner
    workflows: WorkflowStore
    synthesise: Callable[[Material, Spending, TraceLog], Awaitable[Answer]]
    task_state: Callable[[str], Awaitable[int | None]]
    open_trace: Callable[[str], TraceLog]
    ping: Callable[[], Awaitable[Any]]
