"""The request handler every agent serves over HTTP and over the bus: a2a-sdk's ``DefaultRequestHandler``,
which refuses a message the agents cannot take before any executor sees it, and leaves nothing running
when a task cannot start.

Two gaps of a2a-sdk 1.3.0, closed here once for every agent and every binding:

- Executors build their task with ``new_task_from_user_message``, which raises ``ValueError`` for an empty
  text part or a message not from the user. Raised inside the executor, that surfaced as an internal
  error (JSON-RPC -32603, HTTP 500) with tracebacks in the log; it is invalid params, said up front.
- An ``ActiveTask`` starts two event-queue dispatcher tasks when it is created, and only its ``aclose()``
  stops them. When its start fails (Redis down under the task store, an unknown or finished task) the SDK
  drops it without closing it, so both stayed pending until the garbage collector destroyed them
  ("Task was destroyed but it is pending!"), two per failed request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from a2a.server.agent_execution.active_task import ActiveTask
from a2a.server.agent_execution.active_task_registry import ActiveTaskRegistry
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types.a2a_pb2 import Message, Role, SendMessageRequest, Task
from a2a.utils.errors import InvalidParamsError


def check_message(request: SendMessageRequest) -> None:
    """Refuse a message no agent can work on. Raises ``InvalidParamsError`` naming the field, in the shape
    of the SDK's own validation errors (``data.errors[].field``)."""
    message = request.message
    problems: list[tuple[str, str]] = []
    if message.role == Role.ROLE_AGENT:
        problems.append(("message.role", "a message sent to an agent must have role ROLE_USER"))
    for i, part in enumerate(message.parts):
        content = part.WhichOneof("content")
        if content is None:
            problems.append((f"message.parts[{i}]", "a part must carry text, data, a url or raw bytes"))
        elif content == "text" and not part.text:
            problems.append((f"message.parts[{i}].text", "a text part must not be empty"))
    if problems:
        field, why = problems[0]
        raise InvalidParamsError(
            message=f"{field}: {why}",
            data={"errors": [{"field": f, "message": m} for f, m in problems]},
        )


class ActiveTasks(ActiveTaskRegistry):
    """The SDK's registry of running tasks, closing an ``ActiveTask`` whose start failed."""

    def _on_active_task_cleanup(self, active_task: ActiveTask) -> None:
        super()._on_active_task_cleanup(active_task)
        # Called under the task's own lock, which aclose() takes: close it from a task of its own, tracked
        # with the SDK's cleanup tasks so the registry's aclose() drains it too. A task that started is
        # left alone: its producer and consumer end it.
        if active_task._producer_task is None:
            closing = asyncio.create_task(active_task.aclose(), name=f"close-unstarted:{active_task.task_id}")
            self._cleanup_tasks.add(closing)
            closing.add_done_callback(self._cleanup_tasks.discard)


class AgentRequestHandler(DefaultRequestHandler):
    """``DefaultRequestHandler`` (same arguments) with :func:`check_message` on every message sent and
    :class:`ActiveTasks` as its registry of running tasks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The SDK builds its registry inside __init__ and offers no way to pass one; the subclass adds
        # behaviour only, so the instance (and every argument it was given) is kept as it is.
        self._active_task_registry.__class__ = ActiveTasks

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        check_message(params)
        return await super().on_message_send(params, context)

    async def on_message_send_stream(  # type: ignore[override]
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Any, None]:
        check_message(params)
        inner = super().on_message_send_stream(params, context)
        try:
            async for event in inner:
                yield event
        finally:
            await inner.aclose()
