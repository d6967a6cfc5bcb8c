"""Helpers the bus tests share: run consumers for a block, poll with a deadline, count pending entries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from podium.bus.consumer import Consumer
from podium.bus.streams import StreamBus


@asynccontextmanager
async def running(*consumers: Consumer, grace: float = 5.0) -> AsyncIterator[None]:
    """Run consumers for the duration of the block, stopping them gracefully at its end."""
    async with anyio.create_task_group() as tg:
        for consumer in consumers:
            await tg.start(consumer.run)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                for consumer in consumers:
                    await consumer.stop(grace)


async def until(
    predicate: Callable[[], bool | Awaitable[bool]], within: float = 15.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` (sync or async) until true; fail the test after ``within`` seconds."""
    try:
        with anyio.fail_after(within):
            while True:
                result = predicate()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await anyio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"timed out after {within}s waiting for {what}")


async def pending_count(bus: StreamBus, agent: str) -> int:
    """How many entries of ``agent``'s inbox are delivered but not acked."""
    summary = await bus.redis.xpending(bus.keys.inbox(agent), agent)
    return int(summary["pending"])
