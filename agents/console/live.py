"""Server-Sent Events fed from Redis: the agents, the task list and one task, pushed as they change.

A task's feed tails its trace stream and its A2A event stream with blocking reads (``XREAD BLOCK``), so
an entry reaches the browser as soon as the orchestrator writes it. The task list blocks on the event
streams of the tasks still running and looks for new tasks whenever it wakes (at least every
``wake_s``; on Redis Cluster, where one read cannot span slots, every ``wake_s``). Agents have no
stream (heartbeats are keys with a TTL), so their figures are read every ``wake_s`` and sent only when
they changed. The embedded bus cannot block, so there the feeds wait
``wake_s`` between reads instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from redis.asyncio.cluster import RedisCluster

from podium.agents.console import data
from podium.bus.connection import is_embedded
from podium.bus.keys import Keys
from podium.bus.streams import text

KEEPALIVE_S = 15.0  # a comment line now and then, so proxies and browsers keep the stream open


def event(name: str, payload: Any) -> bytes:
    """One SSE message."""
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


class Feeds:
    """The console's live feeds over one Redis client."""

    def __init__(self, redis: Any, keys: Keys, *, wake_s: float = 1.0) -> None:
        self.redis, self.keys, self.wake_s = redis, keys, wake_s
        self.embedded = is_embedded(redis)
        self.cluster = isinstance(redis, RedisCluster)

    async def _block(self, streams: dict[str, str]) -> list[Any]:
        """New entries of ``streams`` (name -> last id seen), waiting up to ``wake_s`` for some."""
        if not streams:
            await anyio.sleep(self.wake_s)
            return []
        if self.embedded:  # fakeredis returns at once: wait here instead
            found = await self.redis.xread(streams, count=500)
            if not found:
                await anyio.sleep(min(self.wake_s, 0.25))
            return list(found or [])
        return list(await self.redis.xread(streams, count=500, block=int(self.wake_s * 1000)) or [])

    async def agents(self) -> AsyncIterator[bytes]:
        last, quiet = "", time.monotonic()
        while True:
            rows = await data.agents(self.redis, self.keys)
            snapshot = {"agents": rows, "deadLetters": await _dlq_counts(self.redis, self.keys)}
            encoded = json.dumps(snapshot, sort_keys=True)
            if encoded != last:
                last, quiet = encoded, time.monotonic()
                yield event("agents", {**snapshot, "now": time.time()})
            elif time.monotonic() - quiet > KEEPALIVE_S:
                quiet = time.monotonic()
                yield b": keepalive\n\n"
            await anyio.sleep(self.wake_s)

    async def tasks(self) -> AsyncIterator[bytes]:
        last, quiet = "", time.monotonic()
        while True:
            rows = await data.tasks(self.redis, self.keys)
            encoded = json.dumps([(r["id"], r["state"], r["updated"]) for r in rows])
            if encoded != last:
                last, quiet = encoded, time.monotonic()
                yield event("tasks", {"tasks": rows, "now": time.time()})
            elif time.monotonic() - quiet > KEEPALIVE_S:
                quiet = time.monotonic()
                yield b": keepalive\n\n"
            running = [(r["agent"], r["id"]) for r in rows if not r["terminal"]][:50]
            if self.cluster:  # one XREAD cannot span slots there: look again after a while
                running = []
            await self._block({self.keys.task_events(agent, t): "$" for agent, t in running})

    async def task(self, task_id: str) -> AsyncIterator[bytes]:
        """The task (without its trace) whenever its state changes, and its trace entries as they come."""
        agent = await data.owner_of(self.redis, self.keys, task_id)
        while agent is None:  # not created yet (the page may open as the task is sent): look again
            await anyio.sleep(self.wake_s)
            agent = await data.owner_of(self.redis, self.keys, task_id)
        trace_key, events_key = self.keys.trace(task_id), self.keys.task_events(agent, task_id)
        # Positions first, then the task: whatever lands in between is read again, never lost.
        newest = await self.redis.xrevrange(events_key, count=1)
        rows = await self.redis.xrange(trace_key)
        detail = await data.task(self.redis, self.keys, task_id, agent=agent, trace=False)
        last_trace = text(rows[-1][0]) if rows else "0-0"
        last_event = text(newest[0][0]) if newest else "0-0"
        if detail is not None:
            detail["trace"] = data.trace_entries(rows)
            yield event("task", detail)
        quiet = time.monotonic()
        while True:
            found = await self._block({trace_key: last_trace, events_key: last_event})
            changed = False
            for stream, entries in found:
                if not entries:
                    continue
                if text(stream) == trace_key:
                    last_trace = text(entries[-1][0])
                    yield event("trace", data.trace_entries(entries))
                else:
                    last_event = text(entries[-1][0])
                    changed = True
            if changed:
                detail = await data.task(self.redis, self.keys, task_id, agent=agent, trace=False)
                if detail is not None:
                    yield event("state", detail)
            if found:
                quiet = time.monotonic()
            elif time.monotonic() - quiet > KEEPALIVE_S:
                quiet = time.monotonic()
                yield b": keepalive\n\n"


async def _dlq_counts(redis: Any, keys: Keys) -> dict[str, int]:
    from podium.bus.streams import StreamBus

    return await data.dead_letter_counts(StreamBus(redis, keys))
