"""The orchestrator agent: plans a request, delegates its steps to specialists over A2A (the bus first),
survives their failures, and synthesises one answer. ``build`` is what the agent runtime calls.

Names are loaded on first use, so a command that needs one small part (``podium agents`` reads the
breakers) does not import the whole orchestrator.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BudgetExceeded": "podium.agents.orchestrator.errors",
    "DelegationError": "podium.agents.orchestrator.errors",
    "LoopDetected": "podium.agents.orchestrator.errors",
    "OrchestratorError": "podium.agents.orchestrator.errors",
    "PlanError": "podium.agents.orchestrator.errors",
    "Orchestrator": "podium.agents.orchestrator.executor",
    "Plan": "podium.agents.orchestrator.plan",
    "parse_plan": "podium.agents.orchestrator.plan",
    "validate_plan": "podium.agents.orchestrator.plan",
    "OfflinePlanner": "podium.agents.orchestrator.planning.offline",
    "split_request": "podium.agents.orchestrator.planning.offline",
    "TraceEntry": "podium.agents.orchestrator.state.trace",
    "read_trace": "podium.agents.orchestrator.state.trace",
}

__all__ = sorted([*_EXPORTS, "build"])


def build(ctx: Any) -> Any:
    """The orchestrator's executor for the agent runtime."""
    from podium.agents.orchestrator.executor import build as build_executor

    return build_executor(ctx)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'podium.agents.orchestrator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
