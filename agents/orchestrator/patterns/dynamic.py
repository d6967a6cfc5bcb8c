"""``dynamic``: orchestrator-workers. At run time the planner turns each item of an earlier step's list
into a worker call; the workers run concurrently and their outputs are joined."""

from __future__ import annotations

from typing import Literal

import anyio
from pydantic import Field

from podium.agents.orchestrator.errors import DelegationError, StepFailed
from podium.agents.orchestrator.events import TraceEvent
from podium.agents.orchestrator.patterns.context import StepContext
from podium.agents.orchestrator.patterns.registry import Pattern
from podium.agents.orchestrator.results import RefError, StepResult
from podium.agents.orchestrator.steps import Call, StepBase, ref_step


class DynamicStep(StepBase):
    """Orchestrator-workers: at run time the planner turns each item of an earlier step's list
    (``over``) into a worker step; the worker template's text may use ``{item}`` and ``{index}``."""

    pattern: Literal["dynamic"] = "dynamic"
    over: str = Field(description="'step.path' of a list in an earlier output")
    worker: Call
    max_workers: int = Field(default=5, ge=1, le=16)

    def calls(self) -> list[Call]:
        return [self.worker]

    def refs(self) -> list[str]:
        return sorted((set(super().refs()) | {ref_step(self.over)}) - {""})


class Dynamic(Pattern):
    name = "dynamic"
    step = DynamicStep
    summary = "one worker per item of an earlier list"
    locals = ("$item",)
    noun = "a dynamic step"

    def max_calls(self, step: DynamicStep) -> int:
        return step.max_workers

    async def run(self, step: DynamicStep, ctx: StepContext) -> StepResult:
        try:
            items = ctx.resolve(step.over, {})
        except RefError as exc:
            raise StepFailed(f"step {step.id!r}: cannot read {step.over}: {exc}") from exc
        if not isinstance(items, list):
            raise StepFailed(f"step {step.id!r}: {step.over} is not a list")
        items = items[: step.max_workers]
        if not items:
            raise StepFailed(f"step {step.id!r}: {step.over} is empty: no workers to create")
        calls = await ctx.expander.expand(step, items, step.part or ctx.request)
        await ctx.trace.record(
            TraceEvent.DYNAMIC,
            step=step.id,
            state=f"{len(calls)} workers",
            reason=f"created {len(calls)} worker step(s) from {len(items)} item(s) of {step.over}",
            data={"workers": [{"skill": c.skill, "text": (c.text or "")[:200]} for c in calls]},
        )
        outputs: list[StepResult | str] = [""] * len(calls)

        async def one(i: int, call: Call) -> None:
            local = {"$item": items[i] if i < len(items) else None, "$index": i + 1}
            try:
                spec = ctx.spec(call, ctx.key(f".w{i + 1}"), local=local)
                outputs[i] = await ctx.delegate(spec, reason=f"worker {i + 1} of {len(calls)}")
            except (DelegationError, StepFailed) as exc:
                outputs[i] = exc.message

        async with anyio.create_task_group() as tg:
            for i, call in enumerate(calls):
                tg.start_soon(one, i, call)
        done = [o for o in outputs if isinstance(o, StepResult)]
        if not done:
            raise StepFailed(f"step {step.id!r}: every worker failed ({'; '.join(str(o) for o in outputs)})")
        workers = [
            {
                "index": i + 1,
                "item": items[i] if i < len(items) else None,
                "agent": o.agent,
                "output": o.output,
            }
            if isinstance(o, StepResult)
            else {"index": i + 1, "error": o}
            for i, o in enumerate(outputs)
        ]
        text = "\n\n".join(o.text for o in done)
        return StepResult(
            step=step.id,
            status="completed",
            output={"workers": workers, "result": text},
            text=text,
            agents=sorted({o.agent or "" for o in done} - {""}),
            agent=done[0].agent,
            binding=done[0].binding,
        )


PATTERN = Dynamic()
