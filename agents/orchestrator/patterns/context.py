"""What a pattern sees while its step runs: the step's attempt, the results it may read, the trace, and
one way to delegate (:meth:`StepContext.delegate`), whatever carries the call."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.agents.orchestrator.delegate import Reply
from podium.agents.orchestrator.dispatch import CallSpec
from podium.agents.orchestrator.errors import StepFailed
from podium.agents.orchestrator.results import RefError, StepResult, resolve
from podium.agents.orchestrator.state.trace import TraceEntry
from podium.agents.orchestrator.steps import REQUEST, Call


class Calls(Protocol):
    """Makes one delegation (the :class:`~podium.agents.orchestrator.dispatch.Dispatcher`)."""

    async def call(self, spec: CallSpec, *, reason: str = "") -> Reply: ...


class Recorder(Protocol):
    """Records a decision in the task's trace."""

    async def record(self, event: str, **fields: Any) -> TraceEntry: ...


class Expander(Protocol):
    """Creates a dynamic step's workers at run time (the planner's job)."""

    async def expand(self, step: Any, items: list[Any], request: str) -> list[Call]: ...


@dataclass
class StepContext:
    """One run (attempt) of one step. ``feedback`` is a failed gate's feedback for this attempt;
    ``instruction`` the caller's edited instruction from an approval."""

    step: Any
    attempt: int
    request: str
    results: Mapping[str, StepResult]
    dispatcher: Calls
    trace: Recorder
    expander: Expander
    feedback: list[dict[str, Any]] = field(default_factory=list)
    instruction: str | None = None

    @property
    def extra(self) -> dict[str, Any]:
        """Data added to the step's own calls (a gate's feedback on a retry)."""
        return {"feedback": self.feedback} if self.feedback else {}

    def key(self, suffix: str = "") -> str:
        """The delegation key of this attempt (``step.attempt`` and a suffix: ``.v1``, ``.r2.gen``)."""
        return f"{self.step.id}.{self.attempt}{suffix}"

    def resolve(self, ref: str, local: dict[str, Any] | None = None) -> Any:
        """The value ``ref`` names for this step. Raises ``RefError``."""
        return resolve(ref, dict(self.results), {REQUEST: self.step.part or self.request, **(local or {})})

    def spec(
        self,
        call: Call,
        key: str,
        *,
        local: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        text: str | None = None,
        repeatable: bool = False,
    ) -> CallSpec:
        """The delegation for ``call``: its text, and its data with every input resolved. Raises
        ``StepFailed`` naming the input that cannot be resolved."""
        step = self.step
        base = text or call.text or step.part or self.request
        scope = {REQUEST: step.part or self.request, **(local or {})}
        if "{item}" in base or "{index}" in base:
            item = scope.get("$item")
            base = base.replace("{item}", as_text(item)).replace("{index}", str(scope.get("$index", "")))
        data = dict(call.data)
        for name, ref in call.inputs.items():
            try:
                data[name] = resolve(ref, dict(self.results), scope)
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

    async def delegate(self, spec: CallSpec, reason: str = "") -> StepResult:
        """Make the delegation ``spec``; its reply as this step's result."""
        reply = await self.dispatcher.call(spec, reason=reason)
        return StepResult(
            step=self.step.id,
            status="completed",
            output=reply.output,
            text=reply.text,
            agent=reply.agent,
            binding=reply.binding,
            agents=[reply.agent],
        )


def as_text(value: Any) -> str:
    """A value as the text a call or a route works on."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("text", "result", "quote", "question"):
            if isinstance(value.get(key), str):
                return value[key]
    return json.dumps(value, default=str)
