"""The echo agent: a real, minimal executor used to measure and test the plumbing itself.

It enqueues the task, streams a ``working`` status, adds an artifact echoing the input (text and a
data part ``{"echo", "chars", "servedBy"}``: the text, its length and the replica that served it), and
completes. A ``delay_s`` number in the
message metadata makes it wait before finishing (tests use it to kill a replica mid-task). Its only
effect is the artifact on its own task, so running it again for the same task id is harmless: that is
the idempotency rule every executor follows (effects keyed by task id; see README).
"""

from __future__ import annotations

import asyncio
import os

from a2a.helpers.proto_helpers import (
    new_data_part,
    new_task_from_user_message,
    new_text_message,
    new_text_part,
)
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import TaskState

from podium.agents.host.context import AgentContext

MAX_DELAY_S = 60.0


class EchoExecutor(AgentExecutor):
    def __init__(self, instance: str = "") -> None:
        self.instance = instance or f"pid-{os.getpid()}"

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        if message is None:
            raise ValueError("echo needs a message")
        task = context.current_task or new_task_from_user_message(message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.update_status(
            TaskState.TASK_STATE_WORKING,
            new_text_message("echoing", context_id=task.context_id, task_id=task.id),
        )
        delay = _delay(context)
        if delay:
            await asyncio.sleep(delay)
        text = context.get_user_input()
        await updater.add_artifact(
            [
                new_text_part(text),
                new_data_part({"echo": text, "chars": len(text), "servedBy": self.instance}),
            ],
            name="echo",
        )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def _delay(context: RequestContext) -> float:
    raw = context.metadata.get("delay_s") if context.metadata else None
    if raw is None and context.message is not None and context.message.HasField("metadata"):
        raw = dict(context.message.metadata).get("delay_s")
    try:
        return min(max(float(raw or 0), 0.0), MAX_DELAY_S)
    except (TypeError, ValueError):
        return 0.0


def build(ctx: AgentContext) -> AgentExecutor:
    return EchoExecutor(instance=str(ctx.config.get("instance", "")))
