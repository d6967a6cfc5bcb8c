"""``task``: one call to one skill (a chain is task steps in order, each gated as it needs)."""

from __future__ import annotations

from typing import Literal

from podium.agents.orchestrator.patterns.context import StepContext
from podium.agents.orchestrator.patterns.registry import Pattern
from podium.agents.orchestrator.results import StepResult
from podium.agents.orchestrator.steps import Call, StepBase


class TaskStep(StepBase):
    """One call to one skill, its output checked by the step's gates (a chain is task steps in order)."""

    pattern: Literal["task"] = "task"
    call: Call

    def calls(self) -> list[Call]:
        return [self.call]


class Task(Pattern):
    name = "task"
    step = TaskStep
    summary = "one call"

    async def run(self, step: TaskStep, ctx: StepContext) -> StepResult:
        spec = ctx.spec(step.call, ctx.key(), extra=ctx.extra, text=ctx.instruction)
        return await ctx.delegate(spec)


PATTERN = Task()
