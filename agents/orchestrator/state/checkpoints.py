"""The orchestration checkpoint: a run's request, plan and every finished step, in Redis.

``{ns}:run:{<task id>}`` is a hash: ``request`` (the text and data asked), ``plan``, ``status``,
``approval`` (a pending or answered approval) and one ``step:<id>`` field per finished step. It is
written as things change, so a restarted orchestrator — or another replica — continues the run
without repeating a finished step. It expires with the task.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from podium.agents.orchestrator.plan import Plan
from podium.agents.orchestrator.results import StepResult
from podium.bus.keys import Keys
from podium.bus.task_store import live_task_ttl, task_ttl_from_env


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
    status: str = "planning"
    results: dict[str, StepResult] = Field(default_factory=dict)
    approval: dict[str, Any] | None = None
    usage: dict[str, float] = Field(default_factory=dict)  # tokens, spend, hops used so far


class Checkpoints:
    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def load(self, task_id: str) -> RunState | None:
        """The run of ``task_id``, or None when there is none. Raises ``redis.RedisError``."""
        raw = await self.redis.hgetall(self.keys.run(task_id))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        if "request" not in fields:
            return None
        state = RunState(request=Request.model_validate_json(fields["request"]))
        if fields.get("plan"):
            state.plan = Plan.model_validate_json(fields["plan"])
        state.status = fields.get("status", "planning")
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

    async def save_plan(self, task_id: str, plan: Plan, status: str = "running") -> None:
        await self._write(task_id, {"plan": plan.model_dump_json(by_alias=True), "status": status})

    async def save_step(self, task_id: str, result: StepResult) -> None:
        await self._write(task_id, {f"step:{result.step}": result.model_dump_json(by_alias=True)})

    async def save_status(self, task_id: str, status: str, approval: dict[str, Any] | None = None) -> None:
        fields: dict[str, str] = {"status": status}
        if approval is not None:
            fields["approval"] = json.dumps(approval)
        await self._write(task_id, fields)

    async def save_usage(self, task_id: str, usage: dict[str, float]) -> None:
        await self._write(task_id, {"usage": json.dumps(usage)})

    async def _write(self, task_id: str, fields: dict[str, str]) -> None:
        key = self.keys.run(task_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={**fields, "updated": str(time.time())})
            ttl = task_ttl_from_env()  # a run kept as long as its task: the short TTL once it is over
            pipe.expire(key, ttl if fields.get("status") in ("done", "failed") else live_task_ttl(ttl))
            await pipe.execute()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
