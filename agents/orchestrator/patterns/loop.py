"""``loop``: evaluator-optimizer. The generator writes, the evaluator judges, the generator revises from
the evaluator's feedback, until the evaluator's verdict passes or ``max_rounds`` rounds ran."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from podium.agents.orchestrator.errors import StepFailed
from podium.agents.orchestrator.events import TraceEvent
from podium.agents.orchestrator.gates import check
from podium.agents.orchestrator.patterns.context import StepContext
from podium.agents.orchestrator.patterns.registry import Pattern
from podium.agents.orchestrator.results import RefError, StepResult
from podium.agents.orchestrator.steps import Call, Gate, StepBase, ref_step


class LoopStep(StepBase):
    """Evaluator-optimizer: the generator writes, the evaluator judges, the generator revises from the
    evaluator's feedback, until the ``accept`` check passes or ``max_rounds`` rounds ran."""

    pattern: Literal["loop"] = "loop"
    generator: Call
    evaluator: Call
    max_rounds: int = Field(default=3, ge=1, le=10)
    accept: Gate = Field(default_factory=lambda: Gate(check="passed"))
    revise: dict[str, str] = Field(
        default_factory=lambda: {
            "draft": "$gen.result",
            "feedback": "$eval.feedback",
            "citations": "$gen.sources",
        },
        description="data added to the generator's call in rounds after the first",
    )

    def calls(self) -> list[Call]:
        return [self.generator, self.evaluator]

    def refs(self) -> list[str]:
        own = {ref_step(r) for r in self.revise.values()}
        return sorted((set(super().refs()) | own) - {""})


class Loop(Pattern):
    name = "loop"
    step = LoopStep
    summary = "a generator and an evaluator until the evaluator passes; writer + reviewer"
    locals = ("$gen", "$eval")
    noun = "a loop"

    def max_calls(self, step: LoopStep) -> int:
        return 2 * step.max_rounds

    async def run(self, step: LoopStep, ctx: StepContext) -> StepResult:
        gen: StepResult | None = None
        ev: StepResult | None = None
        rounds: list[dict[str, Any]] = []
        accepted = False
        reviewed: tuple[str, dict[str, Any]] | None = None
        for n in range(1, step.max_rounds + 1):
            local: dict[str, Any] = {}
            extra: dict[str, Any] = {}
            if gen is not None and ev is not None:
                local = {"$gen": gen.output, "$eval": ev.output}
                for name, ref in step.revise.items():
                    try:
                        extra[name] = ctx.resolve(ref, local)
                    except RefError:
                        continue
            gen_spec = ctx.spec(
                step.generator, ctx.key(f".r{n}.gen"), local=local, extra=extra, text=ctx.instruction
            )
            gen = await ctx.delegate(
                gen_spec, reason=f"round {n}: " + ("write" if n == 1 else "revise from the feedback")
            )
            local = {"$gen": gen.output}
            eval_call = step.evaluator
            if not eval_call.inputs:
                eval_call = eval_call.model_copy(
                    update={"inputs": {"draft": "$gen.result", "citations": "$gen.sources"}}
                )
            try:
                ev_spec = ctx.spec(eval_call, ctx.key(f".r{n}.eval"), local=local)
            except StepFailed:
                ev_spec = ctx.spec(
                    eval_call.model_copy(update={"inputs": {"draft": "$gen.result"}}),
                    ctx.key(f".r{n}.eval"),
                    local=local,
                )
            if reviewed is not None and (ev_spec.text, ev_spec.data) == reviewed:
                # The revision is the draft already reviewed: the evaluator would only say the same again.
                await ctx.trace.record(
                    TraceEvent.LOOP,
                    step=step.id,
                    state="stalled",
                    reason=f"round {n}: the revision is the draft already reviewed; "
                    "stopping with it, not accepted",
                    data={"round": n},
                )
                break
            reviewed = (ev_spec.text, ev_spec.data)
            ev = await ctx.delegate(ev_spec, reason=f"round {n}: evaluate the draft")
            verdict = check(step.accept, ev.output)
            rounds.append(
                {
                    "round": n,
                    "generator": gen.agent,
                    "evaluator": ev.agent,
                    "accepted": verdict.passed,
                    "reason": verdict.reason,
                    "feedback": feedback_lines(ev.output),
                }
            )
            await ctx.trace.record(
                TraceEvent.LOOP,
                step=step.id,
                state="accepted" if verdict.passed else "revise",
                reason=f"round {n} of at most {step.max_rounds}: {verdict.reason}",
                data={"round": n, "feedback": feedback_lines(ev.output)},
            )
            if verdict.passed:
                accepted = True
                break
        assert gen is not None and ev is not None
        output = {**gen.output, "accepted": accepted, "rounds": rounds, "review": ev.output}
        return StepResult(
            step=step.id,
            status="completed",
            output=output,
            text=gen.text,
            agent=gen.agent,
            binding=gen.binding,
            agents=sorted({gen.agent or "", ev.agent or ""} - {""}),
        )


def feedback_lines(output: dict[str, Any]) -> list[str]:
    items = output.get("feedback") or []
    return [str(i.get("message", i)) if isinstance(i, dict) else str(i) for i in items]


PATTERN = Loop()
