"""Runs a plan: every step as soon as the steps it waits for are done, each pattern as its own small
routine, gates around any step, a checkpoint after each finished step.

Steps run concurrently when nothing orders them (a parallel section's wall time is its slowest
branch). A step whose input is missing (a step it waits for failed) is skipped and named as a gap; a
failed step marked ``required`` stops the run. Finished steps found in the checkpoint are not run
again. A step that needs the caller's approval, and has none yet, is left waiting: the run returns with
it in :attr:`Runner.waiting`, and continues once the caller answers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from podium.agents.orchestrator import patterns
from podium.agents.orchestrator.errors import BudgetExceeded, DelegationError, LoopDetected, StepFailed
from podium.agents.orchestrator.events import TraceEvent
from podium.agents.orchestrator.gates import Verdict, check
from podium.agents.orchestrator.patterns.context import Calls, Expander, Recorder, StepContext
from podium.agents.orchestrator.plan import Plan
from podium.agents.orchestrator.results import StepResult
from podium.agents.orchestrator.settings import MAX_PARALLEL
from podium.bus import telemetry

Approver = Callable[[Any], Awaitable[dict[str, Any] | None]]


class StepSaver(Protocol):
    """Where a finished step's result is kept (the run's checkpoint)."""

    async def save_step(self, task_id: str, result: StepResult) -> None: ...


@dataclass
class Runner:
    plan: Plan
    request: str
    dispatcher: Calls
    trace: Recorder
    checkpoints: StepSaver
    task_id: str
    expander: Expander
    results: dict[str, StepResult] = field(default_factory=dict)
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)  # step -> the caller's decision
    needs_approval: Callable[[Any], str | None] = lambda step: None  # why a step needs approval, or None
    max_parallel: int = MAX_PARALLEL
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
                TraceEvent.RESUME,
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
            if missing and not patterns.of(step).joins:
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
                await self.trace.record(TraceEvent.APPROVAL, step=step.id, state="waiting", reason=why)
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
            TraceEvent.STEP,
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
                TraceEvent.GATE,
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
            TraceEvent.STEP,
            step=result.step,
            state=result.status,
            agent=result.agent,
            binding=result.binding,
            duration_ms=result.duration_ms if result.status != "skipped" else None,
            reason=result.error,
        )

    async def _pattern(
        self, step: Any, feedback: list[dict[str, Any]], attempt: int, decision: dict[str, Any] | None
    ) -> StepResult:
        try:
            pattern = patterns.of(step)
        except KeyError:
            raise StepFailed(f"step {step.id!r}: unknown pattern {step.pattern!r}") from None
        ctx = StepContext(
            step=step,
            attempt=attempt,
            request=self.request,
            results=self.results,
            dispatcher=self.dispatcher,
            trace=self.trace,
            expander=self.expander,
            feedback=feedback,
            instruction=(decision or {}).get("instruction"),  # the caller edited the instruction
        )
        return await pattern.run(step, ctx)
