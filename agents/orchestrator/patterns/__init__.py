"""The patterns a plan step can have beyond a plain task, each as its own small routine: routing by the
input, parallel sectioning (joined), voting with a quorum, the evaluator-optimizer loop, and dynamic
orchestrator-workers. :class:`~agents.orchestrator.runner.Runner` runs them; they reach other steps'
results, the trace and the dispatcher only through it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Protocol

import anyio

from podium.agents.orchestrator.dispatch import CallSpec
from podium.agents.orchestrator.errors import DelegationError, StepFailed
from podium.agents.orchestrator.gates import check
from podium.agents.orchestrator.plan import (
    Call,
    DynamicStep,
    LoopStep,
    ParallelStep,
    RouteStep,
    VoteStep,
    When,
)
from podium.agents.orchestrator.results import RefError, StepResult, resolve, select
from podium.agents.orchestrator.state.trace import Trace
from podium.agents.text.routing import classify


class Expander(Protocol):
    """Creates a dynamic step's workers at run time (the planner's job)."""

    async def expand(self, step: DynamicStep, items: list[Any], request: str) -> list[Call]: ...


class Patterns:
    """The pattern routines; the runner provides what they use."""

    results: dict[str, StepResult]
    request: str
    trace: Trace
    expander: Expander

    def spec(
        self,
        step: Any,
        call: Call,
        key: str,
        *,
        local: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        text: str | None = None,
        repeatable: bool = False,
    ) -> CallSpec:
        raise NotImplementedError

    async def _delegate(self, step: Any, spec: CallSpec, reason: str = "") -> StepResult:
        raise NotImplementedError

    async def _route(
        self, step: RouteStep, extra: dict[str, Any], attempt: int, text: str | None
    ) -> StepResult:
        try:
            on = resolve(step.on, self.results, {"$request": step.part or self.request})
        except RefError as exc:
            raise StepFailed(f"step {step.id!r}: cannot route on {step.on}: {exc}") from exc
        subject = as_text(on)
        chosen, why = step.default, "no route matched: the default route"
        for index, route in enumerate(step.routes):
            matched = _matches(route.when, subject)
            if matched:
                chosen, why = route.call, f"route {index + 1} matched ({matched})"
                break
        await self.trace.record(
            "route",
            step=step.id,
            state=chosen.skill,
            reason=why,
            data={"skill": chosen.skill, "agent": chosen.agent},
        )
        spec = self.spec(step, chosen, f"{step.id}.{attempt}", extra=extra, text=text)
        return await self._delegate(step, spec, reason=why)

    def _parallel(self, step: ParallelStep) -> StepResult:
        sections = {
            b: self.results[b].output for b in step.branches if b in self.results and self.results[b].ok
        }
        gaps = [b for b in step.branches if b not in sections]
        if not sections:
            raise StepFailed(f"step {step.id!r}: every branch failed ({', '.join(gaps)})")
        overlap = _overlap([self.results[b] for b in step.branches if b in sections])
        text = "\n\n".join(self.results[b].text for b in sections)
        return StepResult(
            step=step.id,
            status="completed",
            output={"sections": sections, "missing": gaps, "overlapMs": overlap, "result": text},
            text=text,
        )

    async def _vote(
        self, step: VoteStep, extra: dict[str, Any], attempt: int, text: str | None
    ) -> StepResult:
        voters: list[str | None] = list(step.agents) or [None] * step.voters
        replies: list[StepResult | str] = [""] * len(voters)

        async def one(i: int, agent: str | None) -> None:
            call = step.call.model_copy(update={"agent": agent}) if agent else step.call
            spec = self.spec(
                step, call, f"{step.id}.{attempt}.v{i + 1}", extra=extra, text=text, repeatable=True
            )
            try:
                replies[i] = await self._delegate(step, spec, reason=f"voter {i + 1} of {len(voters)}")
            except (DelegationError, StepFailed) as exc:
                replies[i] = exc.message

        async with anyio.create_task_group() as tg:
            for i, agent in enumerate(voters):
                tg.start_soon(one, i, agent)
        ballots = []
        for i, reply in enumerate(replies):
            if isinstance(reply, StepResult):
                try:
                    answer = select(reply.output, step.key.split("."))
                except RefError:
                    answer = None
                ballots.append(
                    {"voter": i + 1, "agent": reply.agent, "answer": answer, "key": _ballot(answer)}
                )
            else:
                ballots.append(
                    {"voter": i + 1, "agent": voters[i], "answer": None, "key": None, "error": reply}
                )
        counted = Counter(b["key"] for b in ballots if b["key"] is not None)
        tally = {k: n for k, n in counted.most_common()}
        top = counted.most_common()
        winner: str | None = None
        why = ""
        if not top:
            why = "no voter answered"
        elif len(top) > 1 and top[0][1] == top[1][1]:
            if step.tie == "first":
                tied = {k for k, n in top if n == top[0][1]}
                winner = next(b["key"] for b in ballots if b["key"] in tied)
                why = f"a tie between {len(tied)} answers: the earliest answer wins (tie rule 'first')"
            else:
                why = f"a tie at {top[0][1]} votes each (tie rule 'fail')"
        else:
            winner = top[0][0]
        if winner is not None and counted[winner] < step.needed:
            why = f"the best answer got {counted[winner]} of {len(voters)} votes; the quorum is {step.needed}"
            winner = None
        dissent = [b for b in ballots if b["key"] is not None and b["key"] != winner]
        await self.trace.record(
            "vote",
            step=step.id,
            state="decided" if winner is not None else "undecided",
            reason=why
            or f"{counted[winner]} of {len(voters)} votes for {winner} (quorum {step.needed})"
            + (f"; {len(dissent)} voter(s) disagreed" if dissent else ""),
            data={"tally": tally, "ballots": ballots, "quorum": step.needed},
        )
        if winner is None:
            raise StepFailed(f"step {step.id!r}: no decision: {why}")
        first = next(i for i, b in enumerate(ballots) if b["key"] == winner)
        chosen = replies[first]
        assert isinstance(chosen, StepResult)
        output = {
            **chosen.output,
            "votes": ballots,
            "tally": tally,
            "quorum": step.needed,
            "dissent": dissent,
        }
        agents = sorted({b["agent"] for b in ballots if b.get("agent")})
        return StepResult(
            step=step.id,
            status="completed",
            output=output,
            text=chosen.text,
            agent=chosen.agent,
            binding=chosen.binding,
            agents=agents,
        )

    async def _loop(self, step: LoopStep, attempt: int, text: str | None) -> StepResult:
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
                        extra[name] = resolve(ref, self.results, local)
                    except RefError:
                        continue
            gen_spec = self.spec(
                step, step.generator, f"{step.id}.{attempt}.r{n}.gen", local=local, extra=extra, text=text
            )
            gen = await self._delegate(
                step, gen_spec, reason=f"round {n}: " + ("write" if n == 1 else "revise from the feedback")
            )
            local = {"$gen": gen.output}
            eval_call = step.evaluator
            if not eval_call.inputs:
                eval_call = eval_call.model_copy(
                    update={"inputs": {"draft": "$gen.result", "citations": "$gen.sources"}}
                )
            try:
                ev_spec = self.spec(step, eval_call, f"{step.id}.{attempt}.r{n}.eval", local=local)
            except StepFailed:
                ev_spec = self.spec(
                    step,
                    eval_call.model_copy(update={"inputs": {"draft": "$gen.result"}}),
                    f"{step.id}.{attempt}.r{n}.eval",
                    local=local,
                )
            if reviewed is not None and (ev_spec.text, ev_spec.data) == reviewed:
                # The revision is the draft already reviewed: the evaluator would only say the same again.
                await self.trace.record(
                    "loop",
                    step=step.id,
                    state="stalled",
                    reason=f"round {n}: the revision is the draft already reviewed; "
                    "stopping with it, not accepted",
                    data={"round": n},
                )
                break
            reviewed = (ev_spec.text, ev_spec.data)
            ev = await self._delegate(step, ev_spec, reason=f"round {n}: evaluate the draft")
            verdict = check(step.accept, ev.output)
            rounds.append(
                {
                    "round": n,
                    "generator": gen.agent,
                    "evaluator": ev.agent,
                    "accepted": verdict.passed,
                    "reason": verdict.reason,
                    "feedback": _feedback_lines(ev.output),
                }
            )
            await self.trace.record(
                "loop",
                step=step.id,
                state="accepted" if verdict.passed else "revise",
                reason=f"round {n} of at most {step.max_rounds}: {verdict.reason}",
                data={"round": n, "feedback": _feedback_lines(ev.output)},
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

    async def _dynamic(self, step: DynamicStep, attempt: int) -> StepResult:
        try:
            items = resolve(step.over, self.results, {})
        except RefError as exc:
            raise StepFailed(f"step {step.id!r}: cannot read {step.over}: {exc}") from exc
        if not isinstance(items, list):
            raise StepFailed(f"step {step.id!r}: {step.over} is not a list")
        items = items[: step.max_workers]
        if not items:
            raise StepFailed(f"step {step.id!r}: {step.over} is empty: no workers to create")
        calls = await self.expander.expand(step, items, step.part or self.request)
        await self.trace.record(
            "dynamic",
            step=step.id,
            state=f"{len(calls)} workers",
            reason=f"created {len(calls)} worker step(s) from {len(items)} item(s) of {step.over}",
            data={"workers": [{"skill": c.skill, "text": (c.text or "")[:200]} for c in calls]},
        )
        outputs: list[StepResult | str] = [""] * len(calls)

        async def one(i: int, call: Call) -> None:
            local = {"$item": items[i] if i < len(items) else None, "$index": i + 1}
            try:
                spec = self.spec(step, call, f"{step.id}.{attempt}.w{i + 1}", local=local)
                outputs[i] = await self._delegate(step, spec, reason=f"worker {i + 1} of {len(calls)}")
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


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("text", "result", "quote", "question"):
            if isinstance(value.get(key), str):
                return value[key]
    return json.dumps(value, default=str)


def _matches(when: When, subject: str) -> str:
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


def _ballot(answer: Any) -> str | None:
    """How an answer is compared with others: numbers to 9 significant digits, text case-folded."""
    if answer is None:
        return None
    if isinstance(answer, bool):
        return str(answer).lower()
    if isinstance(answer, int | float):
        return f"{answer:.9g}"
    if isinstance(answer, str):
        return " ".join(answer.lower().split()) or None
    return json.dumps(answer, sort_keys=True, default=str)


def _feedback_lines(output: dict[str, Any]) -> list[str]:
    items = output.get("feedback") or []
    return [str(i.get("message", i)) if isinstance(i, dict) else str(i) for i in items]


def _overlap(results: list[StepResult]) -> float:
    """How long the branches ran at the same time (ms): from the last start to the first end."""
    if len(results) < 2:
        return 0.0
    return round(max(0.0, min(r.ended for r in results) - max(r.started for r in results)) * 1000, 1)
