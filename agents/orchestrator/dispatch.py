"""Delegating one call so that it survives: timeouts, retries, circuit breakers, fallback, loops, budgets.

For a call to a skill, :class:`Dispatcher` tries the agents that offer it (alive first, pinned agent
only when the plan names one), skipping agents whose breaker is open. Each attempt has a timeout (the
step's, cut to what is left of the request's deadline) and spends a hop. Transient failures (timeouts,
unreachable or overloaded agents, failed tasks) are retried with exponential backoff and full jitter,
then the next agent is tried (fallback); permanent ones (a rejected task, an invalid request) are not
retried. A rejection that names a better agent hands the call to it once; agents handing a call back
and forth, and the same delegation sent again with the same input, are stopped. Every decision goes to
the trace with its reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio
from a2a.helpers.proto_helpers import new_data_part, new_text_part
from a2a.types.a2a_pb2 import Message, Role

from podium.agents.orchestrator.budget import Spending, spend_line
from podium.agents.orchestrator.catalog import Catalog
from podium.agents.orchestrator.delegate import Delegator, Reply
from podium.agents.orchestrator.errors import BudgetExceeded, DelegationError, LoopDetected
from podium.agents.orchestrator.events import TraceEvent
from podium.agents.orchestrator.state.breakers import OPEN, BreakerStore
from podium.agents.orchestrator.state.trace import TraceLog
from podium.bus import telemetry

_KEY_NAMESPACE = uuid.UUID("a5c1e3b2-7d4f-4e1a-9b6c-2f8d0e4a1c37")


@dataclass
class Policy:
    timeout_s: float = 120.0
    retries: int = 2
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    max_repeats: int = 1  # identical (agent, input) delegations allowed beyond the first
    cold_start_s: float = 60.0  # added to the timeout of a call to an agent with no replica running (standby)


@dataclass
class CallSpec:
    """One delegation to make: ``key`` names it within the run (step, voter, round, worker)."""

    step: str
    key: str
    skill: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    agent: str | None = None
    timeout_s: float | None = None
    retries: int | None = None
    repeatable: bool = False  # votes send the same input on purpose


@dataclass
class Dispatcher:
    catalog: Catalog
    delegator: Delegator
    breakers: BreakerStore
    trace: TraceLog
    spending: Spending
    task_id: str
    context_id: str
    policy: Policy = field(default_factory=Policy)
    traceparent: str | None = None
    _seen: dict[str, int] = field(default_factory=dict)

    async def call(self, spec: CallSpec, *, reason: str = "") -> Reply:
        """Run ``spec`` to a completed reply. Raises ``DelegationError`` (every agent failed or refused),
        ``BudgetExceeded`` or ``LoopDetected``."""
        handed: list[str] = []
        pinned = spec.agent
        while True:
            try:
                return await self._call(spec, pinned, reason)
            except DelegationError as exc:
                target = exc.suggested_agent
                if (
                    not target
                    or target in handed
                    or target == exc.agent
                    or self.catalog.entry(target) is None
                ):
                    if target and (target in handed or target == exc.agent):
                        await self.trace.record(
                            TraceEvent.LOOP_DETECTED,
                            step=spec.step,
                            agent=exc.agent,
                            reason=f"{' -> '.join([*handed, exc.agent, target])}: agents hand the task back and forth",
                        )
                        raise LoopDetected(
                            f"step {spec.step!r}: {exc.agent} and {target} keep handing the task to each other"
                        ) from exc
                    raise
                handed.append(exc.agent)
                skill = self._skill_of(target, spec.skill)
                await self.trace.record(
                    TraceEvent.HANDOFF,
                    step=spec.step,
                    agent=target,
                    state="rerouted",
                    reason=f"{exc.agent} rejected it and named {target}: {exc.message}",
                )
                spec = CallSpec(**{**spec.__dict__, "skill": skill, "agent": target})
                pinned = target
                reason = f"suggested by {exc.agent}"

    def _skill_of(self, agent: str, wanted: str) -> str:
        entry = self.catalog.entry(agent)
        skills = [s.id for s in entry.card.skills] if entry else []
        return wanted if wanted in skills or not skills else skills[0]

    async def _call(self, spec: CallSpec, pinned: str | None, reason: str) -> Reply:
        candidates = self.catalog.candidates(spec.skill, pinned)
        if not candidates:
            who = f"agent {pinned!r} with " if pinned else "any alive agent with "
            raise DelegationError(f"no {who}skill {spec.skill!r}", agent=pinned or "")
        self._check_repeat(spec)
        last: DelegationError | None = None
        retries = self.policy.retries if spec.retries is None else spec.retries
        for index, entry in enumerate(candidates):
            allowed, state = await self.breakers.allow(entry.name)
            if not allowed:
                await self.trace.record(
                    TraceEvent.BREAKER,
                    step=spec.step,
                    agent=entry.name,
                    state=state,
                    reason=f"the circuit breaker for {entry.name} is {state}: not calling it now",
                )
                last = DelegationError(
                    f"{entry.name}'s circuit breaker is open", transient=True, agent=entry.name
                )
                continue
            if index > 0 or last is not None:
                await self.trace.record(
                    TraceEvent.FALLBACK,
                    step=spec.step,
                    agent=entry.name,
                    reason=f"trying {entry.name}, another agent with skill {spec.skill!r}"
                    + (f", after: {last.message}" if last else ""),
                )
            sent = 1  # the message sent: a new one only after the agent answered the last one
            for attempt in range(1, retries + 2):
                try:
                    reply = await self._attempt(spec, entry, attempt, sent, reason, state)
                except DelegationError as exc:
                    last = exc
                    if exc.answered:
                        sent += 1
                    if exc.transient:
                        transition = await self.breakers.failure(entry.name)
                        if transition.changed:
                            await self.trace.record(
                                TraceEvent.BREAKER,
                                step=spec.step,
                                agent=entry.name,
                                state=transition.after,
                                reason=f"{transition.failures} failure(s) in a row: breaker {transition.before} -> {transition.after}",
                            )
                        if transition.after == OPEN:
                            break
                    if not exc.transient or attempt > retries:
                        break
                    delay = self._backoff(attempt, exc.retry_after)
                    await self.trace.record(
                        TraceEvent.RETRY,
                        step=spec.step,
                        agent=entry.name,
                        state=f"attempt {attempt + 1}",
                        reason=f"{exc.message}; retrying in {delay:.2f}s",
                        data={"delayS": round(delay, 3)},
                    )
                    telemetry.event(
                        "retry", agent=entry.name, attempt=attempt + 1, delay_s=delay, error=exc.message
                    )
                    await anyio.sleep(delay)
                    continue
                transition = await self.breakers.success(entry.name)
                if transition.changed:
                    await self.trace.record(
                        TraceEvent.BREAKER,
                        step=spec.step,
                        agent=entry.name,
                        state=transition.after,
                        reason=f"a call succeeded: breaker {transition.before} -> closed",
                    )
                return reply
            if last is not None and not last.transient:
                raise last
        assert last is not None
        raise last

    async def _attempt(
        self, spec: CallSpec, entry: Any, attempt: int, sent: int, reason: str, breaker: str
    ) -> Reply:
        budget = self.spending.remaining()  # the receiving agent takes its own hop from what is sent
        try:
            self.spending.take_hop()
        except BudgetExceeded as exc:
            await self.trace.record(
                TraceEvent.BUDGET, step=spec.step, agent=entry.name, state="exhausted", reason=exc.message
            )
            raise
        timeout = spec.timeout_s or self.policy.timeout_s
        # Standby (scaled to zero): the request waits in its inbox while a replica starts.
        cold = not entry.static and entry.alive == 0
        if cold:
            timeout += self.policy.cold_start_s
        left = self.spending.time_left()
        if left is not None:
            if left <= 0:
                raise BudgetExceeded("the request's deadline has passed")
            timeout = min(timeout, left)
        binding = self.delegator.binding_for(entry.card)
        message = self.message(spec, sent)
        why = reason or f"{entry.name} offers skill {spec.skill!r}" + (
            f" ({entry.alive} alive)" if not entry.static else " (outside agent)"
        )
        if cold:
            why += f"; no replica running: allowing {self.policy.cold_start_s:g}s for one to start"
        await self.trace.record(
            TraceEvent.HANDOFF,
            step=spec.step,
            agent=entry.name,
            binding=binding,
            state=f"attempt {attempt}",
            reason=why,
            data={
                "skill": spec.skill,
                "messageId": message.message_id,
                "timeoutS": round(timeout, 3),
                "breaker": breaker,
            },
        )
        attrs = {
            "podium.agent": entry.name,
            "podium.binding": binding,
            "podium.skill": spec.skill,
            "podium.step": spec.step,
            "podium.attempt": attempt,
        }
        try:
            with telemetry.span(f"delegate {spec.step} to {entry.name}", **attrs):
                reply = await self.delegator.send(
                    entry.name,
                    entry.card,
                    message,
                    own=not entry.static,
                    limit_s=timeout,
                    budget=budget,
                    traceparent=telemetry.traceparent() or self.traceparent,
                    token=outside_token(entry),
                )
        except DelegationError as exc:
            await self.trace.record(
                TraceEvent.RESULT,
                step=spec.step,
                agent=entry.name,
                binding=binding,
                state="failed",
                reason=exc.message,
                data={"transient": exc.transient},
            )
            raise
        usage = reply.data.get("usage")
        spent: dict[str, Any] = {}
        if (
            isinstance(usage, dict) and usage
        ):  # what the agent's own model calls spent comes out of the budget too
            tokens_in, tokens_out = int(usage.get("inputTokens") or 0), int(usage.get("outputTokens") or 0)
            priced = usage.get("spendUsd")
            cost = self.spending.charge(
                tokens_in,
                tokens_out,
                float(priced) if isinstance(priced, int | float) else None,
                who=entry.name,
            )
            spent = {
                "inputTokens": tokens_in,
                "outputTokens": tokens_out,
                "spendUsd": cost,
                "model": usage.get("model"),
            }
        await self.trace.record(
            TraceEvent.RESULT,
            step=spec.step,
            agent=entry.name,
            binding=binding,
            state="completed",
            duration_ms=round(reply.duration_ms, 1),
            reason=_summary(reply.text),
            data={"remoteTask": reply.task.id},
        )
        if spent:
            await self.trace.record(
                TraceEvent.SPEND, step=spec.step, state="agent", agent=entry.name,
                reason=f"{spend_line(spent['inputTokens'], spent['outputTokens'], spent['spendUsd'])}"
                + (f" on {spent['model']}" if spent.get("model") else ""),
                data=spent,
            )  # fmt: skip
        return reply

    def message(self, spec: CallSpec, attempt: int) -> Message:
        """The A2A message for one attempt. Its id is derived from the task, the call and the attempt,
        so a repeated delegation (after a crash, or after a timeout or a lost connection, when the
        agent may still be working on it) carries the same idempotency key and finds the agent's task."""
        message_id = str(uuid.uuid5(_KEY_NAMESPACE, f"{self.task_id}/{spec.key}/{attempt}"))
        parts = [new_text_part(spec.text)]
        if spec.data:
            parts.append(new_data_part(spec.data))
        message = Message(role=Role.ROLE_USER, message_id=message_id, context_id=self.context_id, parts=parts)
        if spec.metadata:
            message.metadata.update(spec.metadata)
        message.metadata.update({"podium.idempotencyKey": f"{self.task_id}/{spec.key}/{attempt}"})
        return message

    def _check_repeat(self, spec: CallSpec) -> None:
        if spec.repeatable:
            return
        fingerprint = hashlib.sha256(
            json.dumps([spec.skill, spec.agent, spec.text, spec.data], sort_keys=True, default=str).encode()
        ).hexdigest()
        count = self._seen.get(fingerprint, 0)
        if count > self.policy.max_repeats:
            raise LoopDetected(
                f"step {spec.step!r}: the same delegation to skill {spec.skill!r} with the same input was "
                f"already sent {count} times"
            )
        self._seen[fingerprint] = count + 1

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = min(self.policy.backoff_max_s, self.policy.backoff_s * 2 ** (attempt - 1))
        delay = random.uniform(0, cap)  # full jitter
        return max(delay, retry_after or 0.0)


def _summary(text: str, limit: int = 140) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def outside_token(entry: Any) -> str | None:
    """An outside agent's own bearer token: the env var named when it was added (``--token-env``)."""
    name = getattr(entry, "token_env", None)
    return (os.environ.get(name) or None) if entry.static and name else None
