"""Cancels that reach the replica running the task.

A ``CancelTask`` can arrive at any replica of an agent (over HTTP, or from the shared inbox). When that
replica does not run the task itself, a2a-sdk records CANCELED in the shared task store, and the task
store refuses every later write to the finished task; but the replica that does run it would only notice
at its executor's next event, which for a long step may be minutes away. So every successful cancel is
also announced on the agent's cancel stream (``{ns}:cancels:{agent}``), which every replica watches
(:meth:`CancelNotices.watch`, run by the agent runtime); the replica running the task stops its executor
at once (:class:`StoppableExecutor`) and lets the executor's own ``cancel`` clean up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import anyio
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.tasks.task_updater import TaskUpdater

from podium.bus.backoff import TRANSIENT, Backoff
from podium.bus.keys import Keys
from podium.bus.notify import notifier_for
from podium.bus.text import text

logger = logging.getLogger(__name__)


class CancelNotices:
    """One agent's cancel stream: announce a cancel, and watch for the ones other replicas announce."""

    def __init__(
        self, redis: Any, keys: Keys, agent: str, *, maxlen: int = 1000, block_ms: int = 1000
    ) -> None:
        self._redis = redis
        self.stream = keys.cancels(agent)
        self._maxlen = maxlen
        self._block_ms = block_ms
        self._notifier = notifier_for(redis)  # the embedded bus cannot block on XREAD

    async def publish(self, task_id: str) -> None:
        """Announce that ``task_id`` was cancelled (recorded in the task store already)."""
        await self._redis.xadd(self.stream, {"task": task_id}, maxlen=self._maxlen, approximate=True)
        if self._notifier is not None:
            self._notifier.notify(self.stream)

    async def watch(
        self, on_cancel: Callable[[str], Any], *, task_status: Any = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Call ``on_cancel(task_id)`` for every cancel announced from now on, until cancelled. Rides out
        Redis outages (a cancel sent meanwhile could not be recorded either)."""
        backoff = Backoff()
        last: str | None = await self._end()
        task_status.started()
        while True:
            try:
                if last is None:
                    last = await self._end()
                for entry_id, fields in await self._read(last):
                    last = entry_id
                    task_id = text(fields.get(b"task") or fields.get("task"))
                    if task_id:
                        on_cancel(task_id)
                backoff.reset()
            except TRANSIENT as exc:
                logger.warning("cancel watcher: Redis unavailable (%s); retrying", exc)
                last = None  # start again from the stream's end (it may have been reset)
                await backoff.sleep()

    async def _end(self) -> str:
        """The id of the stream's last entry ("0-0" while it has none): watching starts after it."""
        try:
            newest = await self._redis.xrevrange(self.stream, count=1)
        except TRANSIENT:
            return "0-0"
        return text(newest[0][0]) if newest else "0-0"

    async def _read(self, last: str) -> list[tuple[str, dict[Any, Any]]]:
        if self._notifier is None:
            reply = await self._redis.xread({self.stream: last}, count=100, block=self._block_ms)
        else:
            since = self._notifier.version(self.stream)
            reply = await self._redis.xread({self.stream: last}, count=100)
            if not reply:
                await self._notifier.wait(self.stream, since, self._block_ms / 1000)
        return [(text(i), f) for i, f in reply[0][1]] if reply else []


class StoppableExecutor(AgentExecutor):
    """``inner`` with every running ``execute`` stoppable by task id (:meth:`stop`): a stopped execute is
    cancelled where it waits, then ``inner.cancel`` runs to record and clean up the cancel."""

    def __init__(self, inner: AgentExecutor, agent: str = "") -> None:
        self.inner = inner
        self.agent = agent
        self._running: dict[str, set[anyio.CancelScope]] = {}
        self._cancelling: set[str] = set()  # cancelled through this replica; a2a-sdk stops the executor

    def running(self, task_id: str) -> bool:
        return bool(self._running.get(task_id))

    def stop(self, task_id: str) -> bool:
        """Stop ``task_id``'s executor if it runs here; True when there was one to stop."""
        scopes = self._running.get(task_id)
        if not scopes:
            return False
        logger.info("agent %s: task %s was cancelled; stopping its executor", self.agent, task_id)
        for scope in scopes:
            scope.cancel()
        return True

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id = context.task_id or ""
        with anyio.CancelScope() as scope:
            self._running.setdefault(task_id, set()).add(scope)
            try:
                await self.inner.execute(context, event_queue)
            except asyncio.CancelledError:
                if task_id in self._cancelling:  # cancelled here, through this replica's own handler
                    logger.info("agent %s: task %s stopped after a cancel", self.agent, task_id)
                raise
            finally:
                self._cancelling.discard(task_id)
                scopes = self._running.get(task_id)
                if scopes is not None:
                    scopes.discard(scope)
                    if not scopes:
                        del self._running[task_id]
        if scope.cancelled_caught:
            await self._cancelled(context, event_queue)

    async def _cancelled(self, context: RequestContext, event_queue: EventQueue) -> None:
        """The executor was stopped: let it clean up, and make sure the task's last event is CANCELED."""
        try:
            await self.inner.cancel(context, event_queue)
        except Exception:
            logger.exception("agent %s: cancelling task %s failed", self.agent, context.task_id)
            if context.task_id and context.context_id:
                await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()
        logger.info("agent %s: task %s stopped after a cancel", self.agent, context.task_id)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """A cancel taken by this replica while it runs the task: a2a-sdk stops the executor after this."""
        if context.task_id and self.running(context.task_id):
            logger.info("agent %s: task %s was cancelled; stopping its executor", self.agent, context.task_id)
            self._cancelling.add(context.task_id)
        await self.inner.cancel(context, event_queue)

    def __getattr__(self, name: str) -> Any:  # the runtime's optional hooks (serve, routes, aclose)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
