"""Errors of the orchestrator: a plan that cannot run, a delegation that failed, a budget used up."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base class for the orchestrator's errors."""

    default = "orchestration failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default)
        self.message = message or self.default


class PlanError(OrchestratorError):
    """The plan is invalid (names the step), or no plan can be built from the agents alive."""

    default = "invalid plan"


class DelegationError(OrchestratorError):
    """A delegated step failed. ``transient`` failures may succeed when retried."""

    default = "delegation failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        transient: bool = False,
        agent: str = "",
        retry_after: float | None = None,
        suggested_agent: str | None = None,
        answered: bool = False,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        # the agent answered (a failed task, an A2A error): a retry must be a new message, not the same one
        self.answered = answered
        self.agent = agent
        self.retry_after = retry_after
        self.suggested_agent = suggested_agent


class BudgetExceeded(OrchestratorError):
    """The request's budget (hops, tokens, deadline, spend) is used up."""

    default = "budget exhausted"


class LoopDetected(OrchestratorError):
    """The same delegation repeated with the same input, or agents handing a task back and forth."""

    default = "delegation loop detected"


class Cancelled(OrchestratorError):
    """The task was cancelled or rejected by the caller."""

    default = "cancelled"


class StepFailed(OrchestratorError):
    """A step could not produce its output."""


class Stopped(OrchestratorError):
    """A required step failed, or the budget ran out: the run stops."""
