"""What the console shows, read straight from Redis: agents with their queues and breakers, the task list,
one task with its trace, dead letters. Every function takes the Redis client and the namespace's keys and
returns plain JSON-ready dicts; none of them shows a secret (cards are public, envelopes carry no tokens).
"""

from __future__ import annotations

import json
import time
from typing import Any

from a2a.types.a2a_pb2 import Task, TaskState
from google.protobuf.json_format import MessageToDict
from redis.exceptions import ResponseError

from podium.agents.orchestrator.state.breakers import breaker_states
from podium.agents.orchestrator.state.trace import TraceEntry, read_trace
from podium.bus.keys import Keys
from podium.bus.states import TERMINAL_SHORT, short_name
from podium.bus.streams import DeadLetter, StreamBus, text
from podium.registry.store import Registry

TASK_LIMIT = 200  # the most recent tasks the list considers
TERMINAL = TERMINAL_SHORT  # "completed", "failed", "canceled", "rejected"
state_name = short_name  # ``TASK_STATE_INPUT_REQUIRED`` -> ``input-required``


async def agents(redis: Any, keys: Keys) -> list[dict[str, Any]]:
    """Every registered agent (alive or not) with its card, instances, inbox figures and breaker, as
    ``podium agents --json`` shows them."""
    registry = Registry(redis, keys)
    entries = await registry.with_queues(await registry.list(include_down=True))
    breakers = await breaker_states(redis, keys, [e.name for e in entries])
    consumers = await _consumers(redis, keys, [e.name for e in entries if not e.static])
    out = []
    for e in entries:
        row = e.to_dict()
        row["breaker"] = breakers.get(e.name)
        row["consumers"] = consumers.get(e.name, 0)
        row["version"] = e.card.version
        row["bindings"] = [{"binding": i.protocol_binding, "url": i.url} for i in e.card.supported_interfaces]
        out.append(row)
    return out


async def _consumers(redis: Any, keys: Keys, names: list[str]) -> dict[str, int]:
    """How many consumers each agent's inbox group has (0 when the group does not exist yet)."""
    out: dict[str, int] = {}
    for name in names:
        try:
            groups = await redis.xinfo_groups(keys.inbox(name))
        except ResponseError:  # no such stream yet: redis says so with an error
            groups = []
        out[name] = sum(int(g.get("consumers", 0)) for g in groups if text(g.get("name")) == name)
    return out


async def agent_names(redis: Any, keys: Keys) -> list[str]:
    """Every agent with a card in the registry (each agent's tasks are kept under its own name)."""
    return sorted(text(name) for name in await redis.smembers(keys.card_index()))


async def tasks(redis: Any, keys: Keys, *, limit: int = TASK_LIMIT) -> list[dict[str, Any]]:
    """The most recent tasks of every agent, newest first: id, state, agent, context, started, updated,
    duration."""
    agents = await agent_names(redis, keys)
    async with redis.pipeline(transaction=False) as pipe:
        for agent in agents:
            pipe.zrevrange(keys.task_index(agent), 0, limit - 1, withscores=True)
        indexes = await pipe.execute()
    rows = sorted(
        (
            (agent, text(task_id), score)
            for agent, index in zip(agents, indexes, strict=True)
            for task_id, score in index
        ),
        key=lambda row: -row[2],
    )[:limit]
    async with redis.pipeline(transaction=False) as pipe:
        for agent, task_id, _ in rows:
            pipe.hmget(keys.task(agent, task_id), ["task", "updated", "owner"])
        found = await pipe.execute()
    out = []
    for (agent, task_id, score), (raw, updated, owner) in zip(rows, found, strict=True):
        if raw is None:
            continue  # expired or deleted
        out.append(task_row(task_id, raw, agent, score / 1000, updated, owner))
    return out


async def owner_of(redis: Any, keys: Keys, task_id: str) -> str | None:
    """The agent whose task ``task_id`` is (found in the agents' task indexes), or None."""
    agents = await agent_names(redis, keys)
    async with redis.pipeline(transaction=False) as pipe:
        for agent in agents:
            pipe.zscore(keys.task_index(agent), task_id)
        scores = await pipe.execute()
    return next((agent for agent, score in zip(agents, scores, strict=True) if score is not None), None)


def task_row(
    task_id: str, raw: bytes, agent: Any, started: float, updated: Any, owner: Any = None
) -> dict[str, Any]:
    """A task's row; ``owner`` is the client that created it ('' for a caller nobody authenticated)."""
    task = Task()
    task.ParseFromString(raw)
    state = state_name(task.status.state)
    ended = int(updated) / 1000 if updated else started
    return {
        "id": task_id,
        "state": state,
        "agent": text(agent) if agent else "",
        "contextId": task.context_id,
        "started": started,
        "updated": ended,
        "duration": (ended if state in TERMINAL else time.time()) - started,
        "terminal": state in TERMINAL,
        "owner": text(owner) if owner else "",
    }


async def task(
    redis: Any, keys: Keys, task_id: str, *, agent: str | None = None, trace: bool = True
) -> dict[str, Any] | None:
    """One task (of ``agent``, found when not given): its row, the raw A2A task JSON, the answer artifact
    and (with ``trace``) its trace; None when unknown."""
    agent = agent or await owner_of(redis, keys, task_id)
    if agent is None:
        return None
    raw, updated, owner = await redis.hmget(keys.task(agent, task_id), ["task", "updated", "owner"])
    if raw is None:
        return None
    score = await redis.zscore(keys.task_index(agent), task_id)
    proto = Task()
    proto.ParseFromString(raw)
    started = float(score) / 1000 if score is not None else int(updated or 0) / 1000
    entries = await read_trace(redis, keys, task_id) if trace else []
    return {
        **task_row(task_id, raw, agent, started, updated, owner),
        "message": " ".join(p.text for p in proto.status.message.parts if p.HasField("text")),
        "answer": answer(proto),
        "approval": approval(proto),
        "raw": MessageToDict(proto),
        "trace": [e.dump() for e in entries] if trace else None,
    }


def approval(task: Task) -> dict[str, Any] | None:
    """What a task waiting in input-required asks (the orchestrator's approval event: asks, options,
    deadline, default), or None."""
    if task.status.state != TaskState.TASK_STATE_INPUT_REQUIRED or not task.status.HasField("message"):
        return None
    for part in task.status.message.parts:
        if part.HasField("data"):
            value = MessageToDict(part.data)
            if isinstance(value, dict) and value.get("event") == "approval":
                prompt = " ".join(p.text for p in task.status.message.parts if p.HasField("text"))
                return {
                    "asks": value.get("asks") or [],
                    "options": value.get("options") or ["approve", "reject", "edit"],
                    "deadline": value.get("deadline"),
                    "default": value.get("default"),
                    "prompt": prompt,
                }
    return None


def answer(task: Task) -> dict[str, Any] | None:
    """The orchestrator's ``answer`` artifact (its text and data: sources, steps, gaps), or the first
    artifact of any other agent."""
    chosen = next((a for a in task.artifacts if a.name == "answer"), None)
    if chosen is None and task.artifacts:
        chosen = task.artifacts[0]
    if chosen is None:
        return None
    body = " ".join(p.text for p in chosen.parts if p.HasField("text"))
    data: dict[str, Any] = {}
    for p in chosen.parts:
        if p.HasField("data"):
            value = MessageToDict(p.data)
            if isinstance(value, dict):
                data.update(value)
    return {"name": chosen.name, "text": body, "sources": data.get("sources", []), "data": data}


def trace_entries(rows: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """Trace stream rows as entry dicts, skipping malformed ones."""
    out = []
    for _, fields in rows:
        raw = fields.get(b"e") or fields.get("e")
        try:
            out.append(TraceEntry.model_validate(json.loads(raw)).dump())
        except (TypeError, ValueError):
            continue
    return out


async def dead_letter_counts(bus: StreamBus) -> dict[str, int]:
    """Agents that have a dead-letter stream, with its length (as ``podium dlq`` lists them)."""
    found: dict[str, int] = {}
    async for key in bus.redis.scan_iter(match=bus.keys.dlq("*"), count=500):
        name = text(key)
        found[bus.keys.agent_of_stream(name)] = int(await bus.redis.xlen(name))
    return dict(sorted(found.items()))


def letter(d: DeadLetter) -> dict[str, Any]:
    """One dead letter as ``podium dlq --json`` shows it, without the raw envelope's payload."""
    env = d.decode()
    return {
        "id": d.id,
        "entryId": d.entry_id,
        "error": d.error,
        "attempts": d.attempts,
        "consumer": d.consumer,
        "time": d.time,
        "method": env.method if env else None,
        "envelopeId": env.id if env else None,
        "sender": env.sender if env else None,
        "replayable": env is not None,
    }
