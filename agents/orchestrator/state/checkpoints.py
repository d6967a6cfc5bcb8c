"""The orchestration checkpoint: a run's request, plan and every finished step, in Redis (or in memory).

``{ns}:run:{<task id>}`` is a hash: ``request`` (the text and data asked), ``plan``, ``status``,
``approval`` (a pending or answered approval) and one ``step:<id>`` field per finished step. It is
written as things change, so a restarted orchestrator — or another replica — continues the run
without repeating a finished step. It expires with the task.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from podium.agents.orchestrator.events import RunStatus
from podium.agents.orchestrator.plan import Plan
from podium.agents.orchestrator.results import StepResult
from podium.bus.keys import Keys
from podium.bus.task_store import live_task_ttl, task_ttl_from_env
from podium.bus.text import text


class Request(BaseModel):
    """What the caller asked: the message text, its data part, and the budget it came with."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    text: str
    data: dict[str, Any] = Field(default_factory=dict)
    context_id: str = ""
    budget: dict[str, Any] = Field(default_factory=dict)
    traceparent: str | None = None
    received: float = Field(default_factory=time.time)


class RunState(BaseModel):
    """Everything needed to continue a run."""

    request: Request
    plan: Plan | None = None
    status: RunStatus = RunStatus.PLANNING
    results: dict[str, StepResult] = Field(default_factory=dict)
    approval: dict[str, Any] | None = None
    usage: dict[str, float] = Field(default_factory=dict)  # tokens, spend, hops used so far


class CheckpointStore(Protocol):
    """Where runs are checkpointed: :class:`Checkpoints` (Redis) or :class:`MemoryCheckpoints`."""

    async def load(self, task_id: str) -> RunState | None:
        """The run of ``task_id``, or None when there is none."""
        ...

    async def start(self, task_id: str, state: RunState) -> None: ...

    async def save_plan(self, task_id: str, plan: Plan, status: RunStatus = RunStatus.RUNNING) -> None: ...

    async def save_step(self, task_id: str, result: StepResult) -> None: ...

    async def save_status(
        self, task_id: str, status: RunStatus, approval: dict[str, Any] | None = None
    ) -> None: ...

    async def save_usage(self, task_id: str, usage: dict[str, float]) -> None: ...


class _RunFields:
    """A run as the fields of one hash, written as things change; subclasses read and write them."""

    async def _read(self, task_id: str) -> dict[str, str]:
        raise NotImplementedError

    async def _write(self, task_id: str, fields: dict[str, str]) -> None:
        raise NotImplementedError

    async def load(self, task_id: str) -> RunState | None:
        """The run of ``task_id``, or None when there is none. Raises ``redis.RedisError``."""
        fields = await self._read(task_id)
        if "request" not in fields:
            return None
        state = RunState(request=Request.model_validate_json(fields["request"]))
        if fields.get("plan"):
            state.plan = Plan.model_validate_json(fields["plan"])
        state.status = _status(fields.get("status"))
        if fields.get("approval"):
            state.approval = json.loads(fields["approval"])
        if fields.get("usage"):
            state.usage = json.loads(fields["usage"])
        for name, value in fields.items():
            if name.startswith("step:"):
                result = StepResult.model_validate_json(value)
                state.results[result.step] = result
        return state

    async def start(self, task_id: str, state: RunState) -> None:
        await self._write(
            task_id, {"request": state.request.model_dump_json(by_alias=True), "status": state.status}
        )

    async def save_plan(self, task_id: str, plan: Plan, status: RunStatus = RunStatus.RUNNING) -> None:
        await self._write(task_id, {"plan": plan.model_dump_json(by_alias=True), "status": status})

    async def save_step(self, task_id: str, result: StepResult) -> None:
        await self._write(task_id, {f"step:{result.step}": result.model_dump_json(by_alias=True)})

    async def save_status(
        self, task_id: str, status: RunStatus, approval: dict[str, Any] | None = None
    ) -> None:
        fields: dict[str, str] = {"status": str(status)}
        if approval is not None:
            fields["approval"] = json.dumps(approval)
        await self._write(task_id, fields)

    async def save_usage(self, task_id: str, usage: dict[str, float]) -> None:
        await self._write(task_id, {"usage": json.dumps(usage)})


class Checkpoints(_RunFields):
    """Runs in Redis, ``{ns}:run:{<task id>}``, expiring with their task."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def _read(self, task_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.run(task_id))
        return {text(k): text(v) for k, v in (raw or {}).items()}

    async def _write(self, task_id: str, fields: dict[str, str]) -> None:
        key = self.keys.run(task_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={**fields, "updated": str(time.time())})
            ttl = task_ttl_from_env()  # a run kept as long as its task: the short TTL once it is over
            pipe.expire(key, ttl if fields.get("status") in ("done", "failed") else live_task_ttl(ttl))
            await pipe.execute()


class MemoryCheckpoints(_RunFields):
    """Runs in this process (tests, a single process): the same fields, kept in a dict."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, str]] = {}

    async def _read(self, task_id: str) -> dict[str, str]:
        return dict(self.runs.get(task_id, {}))

    async def _write(self, task_id: str, fields: dict[str, str]) -> None:
        self.runs.setdefault(task_id, {}).update(
            {k: str(v) for k, v in fields.items()}, updated=str(time.time())
        )


def _status(value: str | None) -> RunStatus:
    try:
        return RunStatus(value or RunStatus.PLANNING)
    except ValueError:  # written by a newer version: treat it as running, so the run goes on
        return RunStatus.RUNNING
