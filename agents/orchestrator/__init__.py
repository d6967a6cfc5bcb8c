"""The orchestrator agent: plans a request, delegates its steps to specialists over A2A (the bus
first), survives their failures, and synthesises one answer. ``build`` is what the agent runtime calls."""

from agents.orchestrator.errors import (
    BudgetExceeded,
    DelegationError,
    LoopDetected,
    OrchestratorError,
    PlanError,
)
from agents.orchestrator.executor import Orchestrator, build
from agents.orchestrator.plan import Plan, parse_plan, validate_plan
from agents.orchestrator.planner import OfflinePlanner, split_request
from agents.orchestrator.trace import TraceEntry, read_trace

__all__ = [
    "BudgetExceeded",
    "DelegationError",
    "LoopDetected",
    "OfflinePlanner",
    "Orchestrator",
    "OrchestratorError",
    "Plan",
    "PlanError",
    "TraceEntry",
    "build",
    "parse_plan",
    "read_trace",
    "split_request",
    "validate_plan",
]
