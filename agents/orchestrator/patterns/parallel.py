"""``parallel``: join independent branches (steps that do not wait for each other), run concurrently."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from podium.agents.orchestrator.errors import PlanError, StepFailed
from podium.agents.orchestrator.patterns.context import StepContext
from podium.agents.orchestrator.patterns.registry import Pattern
from podium.agents.orchestrator.results import StepResult
from podium.agents.orchestrator.steps import StepBase

if TYPE_CHECKING:
    from podium.agents.orchestrator.plan import Plan


class ParallelStep(StepBase):
    """Joins independent branches (steps that do not depend on each other), run concurrently."""

    pattern: Literal["parallel"] = "parallel"
    branches: list[str] = Field(min_length=2)

    def refs(self) -> list[str]:
        return sorted(set(self.branches))


class Parallel(Pattern):
    name = "parallel"
    step = ParallelStep
    summary = "join independent steps"
    joins = True

    def max_calls(self, step: ParallelStep) -> int:
        return 0

    def check_in(self, step: ParallelStep, plan: Plan) -> None:
        if len(set(step.branches)) != len(step.branches):
            raise PlanError(f"step {step.id!r}: a branch is listed twice")
        for branch in step.branches:
            before = plan.ancestors(branch)
            for other in step.branches:
                if other != branch and other in before:
                    raise PlanError(
                        f"step {step.id!r}: branches {other!r} and {branch!r} are not independent "
                        f"({branch!r} waits for {other!r}); chain them instead"
                    )

    async def run(self, step: ParallelStep, ctx: StepContext) -> StepResult:
        results = ctx.results
        sections = {b: results[b].output for b in step.branches if b in results and results[b].ok}
        gaps = [b for b in step.branches if b not in sections]
        if not sections:
            raise StepFailed(f"step {step.id!r}: every branch failed ({', '.join(gaps)})")
        overlap = _overlap([results[b] for b in step.branches if b in sections])
        text = "\n\n".join(results[b].text for b in sections)
        return StepResult(
            step=step.id,
            status="completed",
            output={"sections": sections, "missing": gaps, "overlapMs": overlap, "result": text},
            text=text,
        )


def _overlap(results: list[StepResult]) -> float:
    """How long the branches ran at the same time (ms): the proof that a section was parallel."""
    if len(results) < 2:
        return 0.0
    start = max(r.started for r in results)
    end = min(r.ended for r in results)
    return round(max(0.0, end - start) * 1000, 1)


PATTERN = Parallel()
