"""The request handler every Podium agent serves, over HTTP and the bus alike: a2a-sdk's
``DefaultRequestHandler`` that answers a repeated message from its task instead of acting twice.

A new task's id is derived from the agent and the message id, so the same message — redelivered by the
bus after a replica died, or sent again by an orchestrator resuming a run with the same idempotency key
— names the same task:

- when that task has finished (or waits for input), the stored task is the answer: the agent does not
  run again;
- when it is still running somewhere, the caller waits for it (subscribing to its events) and gets its
  result;
- when the bus redelivers it because the replica running it died, the agent continues that task.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.id_generator import IDGenerator, IDGeneratorContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types.a2a_pb2 import Message, SendMessageRequest, SubscribeToTaskRequest, Task, TaskState
from a2a.utils.errors import TaskNotFoundError, UnsupportedOperationError

logger = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("3b0f8e52-1c4a-4d7e-9f26-8a5c0d1e7b94")
_message: contextvars.ContextVar[str | None] = contextvars.ContextVar("podium_message_id", default=None)
REDELIVERED = "redelivered"  # ServerCallContext.state key: the bus delivered this request before
_DONE = {
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_REJECTED,
    TaskState.TASK_STATE_INPUT_REQUIRED,
    TaskState.TASK_STATE_AUTH_REQUIRED,
}


def task_id_for(agent: str, message_id: str) -> str:
    """The id of the task a message with ``message_id`` starts at ``agent``."""
    return str(uuid.uuid5(_NAMESPACE, f"task:{agent}:{message_id}"))


class MessageIds(IDGenerator):
    """Task (and context) ids derived from the message being handled; random without one."""

    def __init__(self, agent: str, kind: str = "task") -> None:
        self.agent, self.kind = agent, kind

    def generate(self, context: IDGeneratorContext) -> str:
        message_id = _message.get()
        if not message_id:
            return str(uuid.uuid4())
        if self.kind == "task":
            return task_id_for(self.agent, message_id)
        return str(uuid.uuid5(_NAMESPACE, f"{self.kind}:{self.agent}:{message_id}"))


class PodiumRequestHandler(DefaultRequestHandler):
    """``DefaultRequestHandler`` plus idempotent message handling (see the module docstring)."""

    def __init__(self, *args: Any, agent: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.agent = agent

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        known = await self._known(params, context)
        if known is not None:
            return known
        return await super().on_message_send(params, context)

    async def on_message_send_stream(  # type: ignore[override]
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Any, None]:
        known = await self._known(params, context)
        if known is not None:
            yield known
            return
        async for event in super().on_message_send_stream(params, context):
            yield event

    async def _setup_active_task(self, params: SendMessageRequest, call_context: ServerCallContext) -> Any:
        # Where a2a-sdk 1.3's handler builds the request context and so generates the task id: the one
        # place that sees both the message and the id generator, for sending and streaming alike.
        token = _message.set(params.message.message_id or None)
        try:
            return await super()._setup_active_task(params, call_context)
        finally:
            _message.reset(token)

    async def _known(self, params: SendMessageRequest, context: ServerCallContext) -> Task | None:
        """The answer to a message this agent has seen before, or None to handle it now."""
        message = params.message
        if message.task_id or not message.message_id:
            return None
        task_id = task_id_for(self.agent, message.message_id)
        stored = await self._versioned_store.get(task_id, context)
        if stored is None:
            return None
        if stored.task.status.state in _DONE:
            logger.info("message %s seen before: answering with task %s", message.message_id, task_id)
            return stored.task
        if context.state.get(REDELIVERED):
            logger.info(
                "message %s redelivered: continuing its unfinished task %s", message.message_id, task_id
            )
            message.task_id = task_id  # its replica died: run it again on the same task
            return None
        logger.info("message %s seen before: waiting for its task %s", message.message_id, task_id)
        try:
            async for _ in self.on_subscribe_to_task(SubscribeToTaskRequest(id=task_id), context):
                pass
        except (UnsupportedOperationError, TaskNotFoundError):  # it finished (or expired) meanwhile
            pass
        again = await self._versioned_store.get(task_id, context)
        return again.task if again is not None else stored.task
