"""The request handler every agent serves over HTTP and over the bus: a2a-sdk's ``DefaultRequestHandler``
with four things added, once for every agent and every binding.

**A repeated message is answered from its task, not acted on twice.** A new task's id is derived from the
agent, the caller (the task's owner, as the binding authenticated it) and the message id, so the same message — redelivered by the bus after a replica died, or sent
again by an orchestrator resuming a run with the same idempotency key — names the same task: when that
task has finished (or waits for input) the stored task is the answer and the agent does not run again;
when it is still running somewhere the caller waits for it (subscribing to its events) and gets its
result; when the bus redelivers it because the replica running it died, the agent continues that task.
Each caller's message ids are its own: another caller sending a message id already used names another task
(it neither fails nor learns that the id was taken).

**A message no agent can take is refused up front.** Executors build their task with
``new_task_from_user_message``, which raises ``ValueError`` for an empty text part or a message not from
the user. Raised inside the executor, that surfaced as an internal error (JSON-RPC -32603, HTTP 500) with
tracebacks in the log; it is invalid params, said before any executor runs.

**A cancel reaches the replica running the task.** Every successful ``CancelTask`` is announced on the
agent's cancel stream (``agents.cancels``), so the replica running the task stops its executor at once,
whichever replica took the cancel.

**Nothing is left running when a task cannot start.** An ``ActiveTask`` starts two event-queue dispatcher
tasks when it is created, and only its ``aclose()`` stops them. When its start fails (Redis down under
the task store, an unknown or finished task) a2a-sdk 1.3.0 drops it without closing it, so both stayed
pending until the garbage collector destroyed them ("Task was destroyed but it is pending!").
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from a2a.server.agent_execution.active_task import ActiveTask
from a2a.server.agent_execution.active_task_registry import ActiveTaskRegistry
from a2a.server.context import ServerCallContext
from a2a.server.id_generator import IDGenerator, IDGeneratorContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    Message,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError, UnsupportedOperationError

from podium.agents.host.cancels import CancelNotices
from podium.bus import a2a_spans
from podium.bus.owners import owner_of
from podium.bus.states import STOPPED

logger = logging.getLogger(__name__)
a2a_spans.strip()  # a2a-sdk's no-op span wrappers cost every call CPU while its tracing is off

_NAMESPACE = uuid.UUID("3b0f8e52-1c4a-4d7e-9f26-8a5c0d1e7b94")
# the message being handled and its caller (the owner its task gets), while the SDK generates the ids
_message: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "podium_message", default=None
)
REDELIVERED = "redelivered"  # ServerCallContext.state key: the bus delivered this request before


def _derived(kind: str, agent: str, message_id: str, owner: str) -> str:
    # A caller nobody authenticated keeps the unscoped form (the ids such deployments have always had).
    scope = f"{agent}:{owner}" if owner else agent
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{scope}:{message_id}"))


def task_id_for(agent: str, message_id: str, owner: str = "") -> str:
    """The id of the task a message with ``message_id`` from the caller ``owner`` (the name the binding
    authenticated, ``bus.owners.owner_of``; '' for nobody) starts at ``agent``."""
    return _derived("task", agent, message_id, owner)


class MessageIds(IDGenerator):
    """Task (and context) ids derived from the message being handled and its caller; random without one."""

    def __init__(self, agent: str, kind: str = "task") -> None:
        self.agent, self.kind = agent, kind

    def generate(self, context: IDGeneratorContext) -> str:
        message = _message.get()
        if message is None:
            return str(uuid.uuid4())
        message_id, owner = message
        return _derived(self.kind, self.agent, message_id, owner)


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
    """``DefaultRequestHandler`` (same arguments, plus the ``agent`` name and where to announce cancels)
    with the four additions above."""

    def __init__(self, *args: Any, agent: str, cancels: CancelNotices | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.agent = agent
        self.cancels = cancels
        # The SDK builds its registry inside __init__ and offers no way to pass one; the subclass adds
        # behaviour only, so the instance (and every argument it was given) is kept as it is.
        self._active_task_registry.__class__ = ActiveTasks

    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> Task | None:
        task = await super().on_cancel_task(params, context)
        if (
            self.cancels is not None
            and task is not None
            and task.status.state == TaskState.TASK_STATE_CANCELED
        ):
            try:
                await self.cancels.publish(task.id)
            except Exception as exc:  # recorded already: the running replica stops at its next event
                logger.warning("task %s cancelled, but the cancel could not be announced: %s", task.id, exc)
        return task

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        check_message(params)
        known = await self._known(params, context)
        if known is not None:
            return known
        try:
            return await super().on_message_send(params, context)
        except UnsupportedOperationError:
            finished = await self._finished_meanwhile(params, context)
            if finished is None:
                raise
            return finished

    async def on_message_send_stream(  # type: ignore[override]
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Any, None]:
        check_message(params)
        known = await self._known(params, context)
        if known is not None:
            yield known
            return
        inner = super().on_message_send_stream(params, context)
        try:
            async for event in inner:
                yield event
        except UnsupportedOperationError:
            finished = await self._finished_meanwhile(params, context)
            if finished is None:
                raise
            yield finished
        finally:
            await inner.aclose()

    async def _finished_meanwhile(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Task | None:
        """A redelivered message whose task another replica finished between our look and our start:
        that task is the answer (instead of "task is in a terminal state")."""
        if not context.state.get(REDELIVERED) or not params.message.task_id:
            return None
        stored = await self._versioned_store.get(params.message.task_id, context)
        return stored.task if stored is not None and stored.task.status.state in STOPPED else None

    async def _setup_active_task(self, params: SendMessageRequest, call_context: ServerCallContext) -> Any:
        # Where a2a-sdk 1.3's handler builds the request context and so generates the task id: the one
        # place that sees both the message and the id generator, for sending and streaming alike.
        message_id = params.message.message_id
        token = _message.set((message_id, owner_of(call_context)) if message_id else None)
        try:
            return await super()._setup_active_task(params, call_context)
        finally:
            _message.reset(token)

    async def _known(self, params: SendMessageRequest, context: ServerCallContext) -> Task | None:
        """The answer to a message this agent has seen before, or None to handle it now."""
        message = params.message
        if message.task_id or not message.message_id:
            return None
        task_id = task_id_for(self.agent, message.message_id, owner_of(context))
        stored = await self._versioned_store.get(task_id, context)
        if stored is None:
            return None
        if stored.task.status.state in STOPPED:
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
