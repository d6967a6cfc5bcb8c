"""The orchestrator's vocabulary, defined once: what a run's checkpoint says it is doing
(:class:`RunStatus`), the decisions its trace records (:class:`TraceEvent`), the status events a caller
is sent (:class:`SessionEvent`), the approval it asks for and the decision it reads back
(:class:`Ask`, :class:`Decision`), and the data part of every status update (:class:`StatusEvent`),
which ``podium ask``, the console and outside callers read. ``docs/events.md`` holds its JSON schema."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class RunStatus(StrEnum):
    """A run's status in its checkpoint (``{ns}:run:{<task id>}``, field ``status``)."""

    PLANNING = "planning"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting-approval"
    DONE = "done"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        """The run is over: it must never start again."""
        return self in (RunStatus.DONE, RunStatus.FAILED)


class TraceEvent(StrEnum):
    """What a trace entry records."""

    PLAN = "plan"
    STEP = "step"
    HANDOFF = "handoff"
    RESULT = "result"
    ROUTE = "route"
    GATE = "gate"
    VOTE = "vote"
    LOOP = "loop"
    DYNAMIC = "dynamic"
    PARALLEL = "parallel"
    RETRY = "retry"
    FALLBACK = "fallback"
    BREAKER = "breaker"
    BUDGET = "budget"
    LOOP_DETECTED = "loop-detected"
    APPROVAL = "approval"
    RESUME = "resume"
    ANSWER = "answer"
    ERROR = "error"
    SPEND = "spend"  # tokens and estimated spend of a model call, and the task's total
    CALLER = "caller"  # who asked (trace only; delegations go out as the orchestrator)


class SessionEvent(StrEnum):
    """The status events a run sends besides its trace entries."""

    PLANNING = "planning"  # the task was accepted and is being planned
    APPROVAL = "approval"  # the task waits for the caller's decision (input-required)
    END = "end"  # the terminal status, with its reason
    HANDOVER = "handover"  # another replica ran the task; its state is the one stored


DecisionName = Literal["approve", "reject", "edit"]
OPTIONS: list[str] = ["approve", "reject", "edit"]


class Ask(BaseModel):
    """One step the caller is asked to decide (``step`` is ``plan`` for a plan over the cost limit)."""

    step: str
    title: str = ""
    reason: str
    skill: str | None = None
    instruction: str = Field(description="what the step will send; an 'edit' decision replaces it")


class Decision(BaseModel):
    """The caller's answer for a step: ``edit`` carries the new ``instruction``; ``by`` is who decided
    when it was not the caller (``timeout``)."""

    decision: DecisionName
    instruction: str | None = None
    by: str | None = None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class StatusEvent(BaseModel):
    """The data part of a status update from the orchestrator, one per event. A trace entry has
    ``event`` (a :class:`TraceEvent`), ``ts``, and the fields that apply to it; the run's own events
    (a :class:`SessionEvent`) carry what they announce: an approval its ``asks``, ``options``,
    ``deadline`` and ``default``, the end its ``reason``. Unknown fields are kept: new patterns may
    record more."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    event: str = Field(
        description="a trace event (plan, step, handoff, result, route, gate, vote, loop, dynamic, parallel, "
        "retry, fallback, breaker, budget, loop-detected, approval, resume, answer, error) or a run's "
        "own (planning, approval, end, handover)"
    )
    ts: float | None = Field(default=None, description="when it happened, seconds since the epoch")
    step: str | None = Field(default=None, description="the plan step it is about ('plan': the whole plan)")
    state: str | None = Field(
        default=None, description="the step's or decision's state, e.g. started, failed"
    )
    agent: str | None = Field(default=None, description="the agent it concerns (the planner for 'plan')")
    binding: str | None = Field(default=None, description="how the agent was reached: redis-streams, JSONRPC")
    reason: str | None = Field(default=None, description="why, in words")
    duration_ms: float | None = Field(default=None, description="how long what it ends took")
    data: dict[str, Any] | None = Field(default=None, description="event details: the plan, a tally, a route")
    asks: list[Ask] | None = Field(default=None, description="approval: the steps to decide")
    options: list[DecisionName] | None = Field(default=None, description="approval: the answers accepted")
    deadline: float | None = Field(default=None, description="approval: when the default answer applies")
    default: Literal["deny", "approve"] | None = Field(default=None, description="approval: the answer then")


__all__ = ["OPTIONS", "Ask", "Decision", "RunStatus", "SessionEvent", "StatusEvent", "TraceEvent"]
