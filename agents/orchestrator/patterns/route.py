"""``route``: pick the call by the input (its kind, a regex, some words), with a default."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from podium.agents.orchestrator.errors import StepFailed
from podium.agents.orchestrator.events import TraceEvent
from podium.agents.orchestrator.patterns.context import StepContext, as_text
from podium.agents.orchestrator.patterns.registry import Pattern
from podium.agents.orchestrator.results import RefError, StepResult
from podium.agents.orchestrator.steps import REQUEST, Call, PlanModel, StepBase, ref_step
from podium.agents.text.routing import classify


class When(PlanModel):
    """A route's condition on the routed text: its kind (as the specialists classify requests), a
    regex, or any of some words."""

    kind: Literal["compute", "research", "write", "review", "revise", "creative"] | None = None
    matches: str | None = Field(default=None, max_length=500)
    contains: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> When:
        if self.kind is None and self.matches is None and not self.contains:
            raise ValueError("a route condition needs kind, matches or contains")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"matches: not a regular expression: {exc}") from exc
        return self


class Route(PlanModel):
    when: When
    call: Call


class RouteStep(StepBase):
    """Routing: the first route whose condition matches ``on`` (the request, or an earlier output) is
    called; the default call when none does."""

    pattern: Literal["route"] = "route"
    on: str = Field(default=REQUEST, description="what to route on: '$request' or 'step.path'")
    routes: list[Route] = Field(min_length=1)
    default: Call

    def calls(self) -> list[Call]:
        return [r.call for r in self.routes] + [self.default]

    def refs(self) -> list[str]:
        return sorted(set(super().refs()) | ({ref_step(self.on)} - {""}))


class RoutePattern(Pattern):
    name = "route"
    step = RouteStep
    summary = "choose a skill by the input, with a default"

    def max_calls(self, step: RouteStep) -> int:
        return 1

    async def run(self, step: RouteStep, ctx: StepContext) -> StepResult:
        try:
            on = ctx.resolve(step.on)
        except RefError as exc:
            raise StepFailed(f"step {step.id!r}: cannot route on {step.on}: {exc}") from exc
        subject = as_text(on)
        chosen, why = step.default, "no route matched: the default route"
        for index, route in enumerate(step.routes):
            matched = matches(route.when, subject)
            if matched:
                chosen, why = route.call, f"route {index + 1} matched ({matched})"
                break
        await ctx.trace.record(
            TraceEvent.ROUTE,
            step=step.id,
            state=chosen.skill,
            reason=why,
            data={"skill": chosen.skill, "agent": chosen.agent},
        )
        spec = ctx.spec(chosen, ctx.key(), extra=ctx.extra, text=ctx.instruction)
        return await ctx.delegate(spec, reason=why)


def matches(when: When, subject: str) -> str:
    """Why ``when`` matches ``subject`` ('' when it does not)."""
    if when.kind is not None:
        kind = classify(subject).kind
        if kind == when.kind:
            return f"the input is {kind}"
    if when.matches is not None and re.search(when.matches, subject, re.I):
        return f"the input matches {when.matches!r}"
    found = [w for w in when.contains if w.lower() in subject.lower()]
    if found:
        return f"the input mentions {', '.join(found)}"
    return ""


PATTERN = RoutePattern()
