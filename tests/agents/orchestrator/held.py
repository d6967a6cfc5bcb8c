"""The orchestrator, held still right after it hands a new task over, for the accept-to-store test.

With ``PODIUM_TEST_HOLD_AFTER_TASK`` set, the executor stops for good the moment it has enqueued the new
task (the event the request handler answers a non-blocking send with): the handler stores the task and
replies while nothing else of the run happens, so a SIGKILL sent on the reply lands exactly in the window
between answering the caller and whatever the orchestrator does next. Without the variable it is the
orchestrator, unchanged (a restarted replica runs without it)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.types.a2a_pb2 import Task

from podium.agents.host.context import AgentContext
from podium.agents.orchestrator import executor as orchestrator

HOLD = "PODIUM_TEST_HOLD_AFTER_TASK"


class _HeldAfterTask:
    """An event queue that never returns from enqueueing a ``Task`` (after enqueueing it)."""

    def __init__(self, queue: EventQueue) -> None:
        self._queue = queue

    async def enqueue_event(self, event: Any) -> None:
        await self._queue.enqueue_event(event)
        if isinstance(event, Task):
            await asyncio.Event().wait()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


class Held(orchestrator.Orchestrator):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        if os.environ.get(HOLD) and context.current_task is None:
            event_queue = _HeldAfterTask(event_queue)  # type: ignore[assignment]
        await super().execute(context, event_queue)


def build(ctx: AgentContext) -> AgentExecutor:
    built = orchestrator.build(ctx)
    assert isinstance(built, orchestrator.Orchestrator)
    built.__class__ = Held
    return built
