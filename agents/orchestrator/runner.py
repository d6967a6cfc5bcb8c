"""Runs a plan: every step as soon as the steps it waits for are done, each pattern as its own small
routine, gates around any step, a checkpoint after each finished step.

Steps run concurrently when nothing orders them (a parallel section's wall time is its slowest
branch). A step whose input is missing (a step it waits for failed) is skipped and named as a gap; a
failed step marked ``required`` stops the run. Finished steps found in the checkpoint are not run
again. A step that needs the caller's approval, and has none yet, is left waiting: the run returns with
it in :attr:`Runner.waiting`, and continues once the caller answers.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from agents.orchestrator.checkpoint import Checkpoints
from agents.orchestrator.delegate import Reply
from agents.orchestrator.dispatch import CallSpec, Dispatcher
from agents.orchestrator.errors import BudgetExceeded, DelegationError, LoopDetected, OrchestratorError
from agents.orchestrator.gates import Verdict, check
from agents.orchestrator.plan import (
    Call,
    DynamicStep,
    LoopStep,
    ParallelStep,
    Plan,
    RouteStep,
    TaskStep,
    VoteStep,
    When,
)
from agents.orchestrator.results import RefError, StepResult, resolve, select
from agents.orchestrator.trace import Trace
from agents.specialists.routing import classify
from bus import telemetry


class Expander(Protocol):
    """Creates a dynamic step's workers at run time (the planner's job)."""

    async def expand(self, step: DynamicStep, items: list[Any], request: str) -> list[Call]: ...


class StepFailed(OrchestratorError):
    """A step could not produce its output."""


class Stopped(OrchestratorError):
    """A required step failed, or the budget ran out: the run stops."""


Approver = Callable[[Any], Awaitable[dict[str, Any] | None]]


@dataclass
class Runner:
    plan: Plan
    request: str
    dispatcher: Dispatcher
    trace: Trace
    checkpoints: Checkpoints
    task_id: str
    expander: Expander
    results: dict[str, StepResult] = field(default_factory=dict)
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)  # step -> the caller's decision
    needs_approval: Callable[[Any], str | None] = lambda step: None  # why a step needs approval, or None
    max_parallel: int = 16
    waiting: list[str] = field(default_factory=list)
    stopped: str | None = None

    async def run(self) -> dict[str, StepResult]:
        """Run every step not yet finished. Returns all results (also those of earlier runs)."""
        done = {s.id: anyio.Event() for s in self.plan.steps}
        for step_id in self.results:
            if step_id in done:
                done[step_id].set()
        if self.results:
            await self.trace.record(
                "resume",
                reason=f"{len(self.results)} of {len(self.plan.steps)} steps already done: "
                + ", ".join(sorted(self.results))
                + "; not running them again",
            )
        self._slots = anyio.Semaphore(self.max_parallel)
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for step in self.plan.steps:
                if step.id not in self.results:
                    tg.start_soon(self._run_step, step, done)
        return self.results

    async def _run_step(self, step: Any, done: dict[str, anyio.Event]) -> None:
        try:
            for dep in self.plan.deps(step):
                await done[dep].wait()
            if self.stopped:
                return
            missing = [d for d in self.plan.deps(step) if d not in self.results or not self.results[d].ok]
            if any(d not in self.results for d in missing):  # a dependency is waiting for approval
                self.waiting.append(step.id) if step.id not in self.waiting else None
                return
            if missing and not isinstance(step, ParallelStep):
                await self._finish(
                    StepResult(
                        step=step.id,
                        status="skipped",
                        error=f"it needs {', '.join(missing)}, which did not complete",
                    )
                )
                return
            why = self.needs_approval(step)
            decision = self.approvals.get(step.id)
            if why and decision is None:
                self.waiting.append(step.id)
                await self.trace.record("approval", step=step.id, state="waiting", reason=why)
                return
            if decision is not None and decision.get("decision") == "reject":
                await self._finish(
                    StepResult(step=step.id, status="skipped", error="the caller rejected this step")
                )
                return
            async with self._slots:
                with telemetry.span(
                    f"step {step.id}", **{"podium.step": step.id, "podium.pattern": step.pattern}
                ):
                    await self._execute(step, decision)
        finally:
            if step.id in self.results:
                done[step.id].set()
            elif self.stopped or step.id in self.waiting:
                done[step.id].set()  # dependents see it missing and wait or stop too

    async def _execute(self, step: Any, decision: dict[str, Any] | None) -> None:
        started = time.time()
        await self.trace.record(
            "step",
            step=step.id,
            state="started",
            reason=step.title or step.pattern,
            data={"pattern": step.pattern},
        )
        attempts = step.gate.max_attempts if step.gate else 1
        feedback: list[dict[str, Any]] = []
        result: StepResult | None = None
        error = ""
        for attempt in range(1, attempts + 1):
            try:
                result = await self._pattern(step, feedback, attempt, decision)
            except (StepFailed, DelegationError, LoopDetected) as exc:
                error = exc.message
                result = None
                break
            except BudgetExceeded as exc:
                error = exc.message
                self.stopped = f"budget: {exc.message}"
                result = None
                break
            result.attempts = attempt
            if step.gate is None:
                break
            verdict: Verdict = check(step.gate, result.output)
            await self.trace.record(
                "gate",
                step=step.id,
                state="passed" if verdict.passed else "failed",
                reason=f"{step.gate.check}: {verdict.reason}"
                + (
                    ""
                    if verdict.passed or attempt == attempts
                    else f"; running the step again ({attempt + 1}/{attempts}) with this feedback"
                ),
                data={"check": step.gate.check, "attempt": attempt},
            )
            if verdict.passed:
                break
            feedback = verdict.feedback
            error = f"gate {step.gate.check} failed: {verdict.reason}"
            result.status = "failed"
            result.error = error
        if result is None:
            result = StepResult(step=step.id, status="failed", error=error, started=started)
        result.started, result.ended = started, time.time()
        await self._finish(result)
        if not result.ok and step.required and not self.stopped:
            self.stopped = f"required step {step.id!r} failed: {result.error}"
        if self.stopped:
            self._tg.cancel_scope.cancel()

    async def _finish(self, result: StepResult) -> None:
        self.results[result.step] = result
        await self.checkpoints.save_step(self.task_id, result)
        await self.trace.record(
            "step",
            step=result.step,
            state=result.status,
            agent=result.agent,
            binding=result.binding,
            duration_ms=result.duration_ms if result.status != "skipped" else None,
            reason=result.error,
        )

    # -- patterns ----------------------------------------------------------------------------------

    async def _pattern(
        self, step: Any, feedback: list[dict[str, Any]], attempt: int, decision: dict[str, Any] | None
    ) -> StepResult:
        extra = {"feedback": feedback} if feedback else {}
        text = (decision or {}).get("instruction")  # the caller edited the instruction
        if isinstance(step, TaskStep):
            return await self._task(step, step.call, extra, attempt, text)
        if isinstance(step, RouteStep):
            return await self._route(step, extra, attempt, text)
        if isinstance(step, ParallelStep):
            return self._parallel(step)
        if isinstance(step, VoteStep):
            return await self._vote(step, extra, attempt, text)
        if isinstance(step, LoopStep):
            return await self._loop(step, attempt, text)
        if isinstance(step, DynamicStep):
            return await self._dynamic(step, attempt)
        raise StepFailed(f"step {step.id!r}: unknown pattern {step.pattern!r}")

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
        """The delegation for ``call`` within ``step``: its text, and its data with every input resolved."""
        base = text or call.text or step.part or self.request
        scope = {"$request": step.part or self.request, **(local or {})}
        if "{item}" in base or "{index}" in base:
            item = scope.get("$item")
            base = base.replace("{item}", _as_text(item)).replace("{index}", str(scope.get("$index", "")))
        data = dict(call.data)
        for name, ref in call.inputs.items():
            try:
                data[name] = resolve(ref, self.results, scope)
            except RefError as exc:
                raise StepFailed(f"step {step.id!r}: input {name!r} ({ref}): {exc}") from exc
        data.update(extra or {})
        return CallSpec(
            step=step.id,
            key=key,
            skill=call.skill,
            text=base,
            data=data,
            metadata=dict(call.metadata),
            agent=call.agent,
            timeout_s=step.timeout_s,
            retries=step.retries,
            repeatable=repeatable,
        )

    async def _delegate(self, step: Any, spec: CallSpec, reason: str = "") -> StepResult:
        reply = await self.dispatcher.call(spec, reason=reason)
        return _from_reply(step.id, reply)

    async def _task(
        self, step: TaskStep, call: Call, extra: dict[str, Any], attempt: int, text: str | None
    ) -> StepResult:
        return await self._delegate(
            step, self.spec(step, call, f"{step.id}.{attempt}", extra=extra, text=text)
        )

    async def _route(
        self, step: RouteStep, extra: dict[str, Any], attempt: int, text: str | None
    ) -> StepResult:
        try:
            on = resolve(step.on, self.results, {"$request": step.part or self.request})
        except RefError as exc:
            raise StepFailed(f"step {step.id!r}: cannot route on {step.on}: {exc}") from exc
        subject = _as_text(on)
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


def _from_reply(step_id: str, reply: Reply) -> StepResult:
    return StepResult(
        step=step_id,
        status="completed",
        output=reply.output,
        text=reply.text,
        agent=reply.agent,
        binding=reply.binding,
        agents=[reply.agent],
    )


def _as_text(value: Any) -> str:
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
