"""The trace: every decision the orchestrator takes for a task, with its reason and time (in Redis, or in
memory).

Entries go to the Redis stream ``{ns}:trace:{<task id>}`` (so any replica, ``podium trace`` and the
console can read them) and to the listeners of the running task (which stream them to the caller as
A2A status updates, as :class:`~podium.agents.orchestrator.events.StatusEvent` models). Events
(:class:`~podium.agents.orchestrator.events.TraceEvent`): ``plan``, ``step`` (started / completed / failed / skipped), ``handoff``
(a delegation sent: to whom, over which binding, why), ``result`` (its answer), ``route``, ``gate``,
``vote``, ``loop``, ``dynamic``, ``parallel``, ``retry``, ``fallback``, ``breaker``, ``budget``,
``loop-detected``, ``approval``, ``resume``, ``answer``, ``error``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from podium.bus.keys import Keys
from podium.bus.task_store import task_ttl_from_env  # as long as the task itself

logger = logging.getLogger(__name__)

TRACE_MAXLEN = 10_000


class TraceEntry(BaseModel):
    """One decision. ``durationMs`` is set on entries that end something (a step, a delegation)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    event: str
    ts: float = Field(default_factory=time.time)
    step: str | None = None
    state: str | None = None
    agent: str | None = None
    binding: str | None = None
    reason: str = ""
    duration_ms: float | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=False)

    def line(self) -> str:
        """One readable line, as ``podium ask`` and ``podium trace`` show it, e.g.
        ``handoff compute attempt 1 → analyst via redis-streams (0.31s) — analyst offers skill 'calculate'``."""
        words = [self.event, self.step or "", self.state or ""]
        if self.agent:
            words.append(f"→ {self.agent}")
        if self.binding:
            words.append(f"via {self.binding}")
        if self.duration_ms is not None:
            words.append(f"({self.duration_ms / 1000:.2f}s)")
        line = " ".join(w for w in words if w)
        return f"{line} — {self.reason}" if self.reason else line


Listener = Callable[[TraceEntry], Any]


class TraceLog(Protocol):
    """One task's trace: :class:`Trace` (Redis) or :class:`MemoryTrace`. ``listeners`` hear of each
    entry as it is recorded."""

    task_id: str
    listeners: list[Listener]

    async def record(self, event: str, **fields: Any) -> TraceEntry:
        """Record one decision (``event`` a :class:`~podium.agents.orchestrator.events.TraceEvent`)."""
        ...

    async def drain(self) -> None:
        """Wait until every entry recorded so far is kept (or given up on)."""
        ...

    async def entries(self) -> list[TraceEntry]:
        """The trace so far, oldest first."""
        ...


async def _tell(listeners: list[Listener], entry: TraceEntry) -> None:
    for listener in list(listeners):
        result = listener(entry)
        if hasattr(result, "__await__"):
            await result


class Trace:
    """The trace of one task: appends to Redis and tells listeners.

    Listeners hear of an entry at once; the Redis writes are batched by one background writer per trace
    (one pipeline for every entry recorded while the previous write was out), so recording never waits
    for Redis. :meth:`drain` waits for what is queued. Writes are best effort: a trace that cannot be
    written is logged, never a reason to fail the task."""

    def __init__(self, redis: Any, keys: Keys, task_id: str) -> None:
        self.redis = redis
        self.key = keys.trace(task_id)
        self.task_id = task_id
        self.listeners: list[Listener] = []
        self._pending: list[TraceEntry] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, event: str, **fields: Any) -> TraceEntry:
        entry = TraceEntry(event=event, **fields)
        self._pending.append(entry)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())
        await _tell(self.listeners, entry)
        return entry

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for entry in batch:
                        pipe.xadd(
                            self.key, {"e": json.dumps(entry.dump())}, maxlen=TRACE_MAXLEN, approximate=True
                        )
                    pipe.expire(self.key, task_ttl_from_env())
                    await pipe.execute()
            except Exception as exc:  # the trace must never take the task down with it
                logger.warning(
                    "could not write %d trace entries of task %s: %s", len(batch), self.task_id, exc
                )

    async def drain(self) -> None:
        """Wait until every entry recorded so far is written (or given up on)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def entries(self) -> list[TraceEntry]:
        await self.drain()
        return _parse(await self.redis.xrange(self.key), self.task_id)


class MemoryTrace:
    """One task's trace in this process. Traces made with the same ``book`` share it, as tasks share
    Redis; ``book[task_id]`` is the task's entries."""

    def __init__(self, task_id: str, book: dict[str, list[TraceEntry]] | None = None) -> None:
        self.task_id = task_id
        self.listeners: list[Listener] = []
        self.book = book if book is not None else {}

    async def record(self, event: str, **fields: Any) -> TraceEntry:
        entry = TraceEntry(event=event, **fields)
        self.book.setdefault(self.task_id, []).append(entry)
        await _tell(self.listeners, entry)
        return entry

    async def drain(self) -> None:
        return None

    async def entries(self) -> list[TraceEntry]:
        return list(self.book.get(self.task_id, []))

    def events(self, event: str) -> list[TraceEntry]:
        """The entries of one event, for tests and people."""
        return [e for e in self.book.get(self.task_id, []) if e.event == event]


async def read_trace(redis: Any, keys: Keys, task_id: str) -> list[TraceEntry]:
    """A task's trace, oldest first (empty when there is none). Raises ``redis.RedisError``."""
    return _parse(await redis.xrange(keys.trace(task_id)), task_id)


def _parse(rows: list[Any], task_id: str) -> list[TraceEntry]:
    entries = []
    for _, fields in rows:
        raw = fields.get(b"e") or fields.get("e")
        try:
            entries.append(TraceEntry.model_validate(json.loads(raw)))
        except (TypeError, ValueError):
            logger.warning("skipping a malformed trace entry of task %s", task_id)
    return entries


def timeline(entries: list[TraceEntry]) -> list[str]:
    """The trace as lines with the time since the first entry, for people."""
    if not entries:
        return []
    start = entries[0].ts
    return [f"{e.ts - start:8.3f}s  {e.line()}" for e in entries]
