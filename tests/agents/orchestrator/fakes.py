"""In-process stand-ins for the bus in the pattern unit tests: a dispatcher that records every
delegation and answers with a real A2A task (the trace and checkpoints are the in-memory stores).
The end-to-end tests (test_e2e, test_durable, ...) run the same patterns over real agents and Redis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from a2a.helpers.proto_helpers import new_data_part, new_text_part
from a2a.types.a2a_pb2 import Artifact, Task, TaskState, TaskStatus

from podium.agents.orchestrator.delegate import Reply
from podium.agents.orchestrator.dispatch import CallSpec
from podium.agents.orchestrator.errors import DelegationError

# what an agent answers to one delegation: (text, data), or an exception to raise
Answer = Callable[[CallSpec], tuple[str, dict[str, Any]]]


def echo(spec: CallSpec) -> tuple[str, dict[str, Any]]:
    return f"{spec.skill}: {spec.text}", {}


@dataclass
class FakeDispatcher:
    """Answers every call with ``answer(spec)``, as agent ``agent-<skill>`` would over the bus."""

    answer: Answer = echo
    calls: list[CallSpec] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    async def call(self, spec: CallSpec, *, reason: str = "") -> Reply:
        self.calls.append(spec)
        self.reasons.append(reason)
        text, data = self.answer(spec)
        agent = spec.agent or f"agent-{spec.skill}"
        task = Task(
            id=f"task-{len(self.calls)}",
            context_id="ctx",
            status=TaskStatus(state=TaskState.TASK_STATE_COMPLETED),
            artifacts=[Artifact(artifact_id="a", parts=[new_text_part(text), new_data_part(data)])],
        )
        return Reply(agent=agent, binding="redis-streams", task=task, text=text, data=data, duration_ms=1.0)

    def keys(self) -> list[str]:
        return [c.key for c in self.calls]


def failing(skill: str, answer: Answer = echo) -> Answer:
    """``answer``, except that calls to ``skill`` fail as a delegation that no agent could serve."""

    def wrapped(spec: CallSpec) -> tuple[str, dict[str, Any]]:
        if spec.skill == skill:
            raise DelegationError(f"no agent could serve {skill}")
        return answer(spec)

    return wrapped
