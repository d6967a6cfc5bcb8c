"""Shared A2A task state in Redis, so any replica can serve GetTask, CancelTask and SubscribeToTask.

:class:`RedisTaskStore` implements a2a-sdk's cluster-mode ``VersionedTaskStore``: each task is a hash
(``{ns}:task:{agent}:{<id>}``) holding the serialized ``Task``, its integer version, owner and state. One
Lua script compares the version and writes the task together with the event that produced it, appended
to the task's event stream (``{ns}:task:{agent}:{<id>}:events``, same hash tag); it refuses any change to
a task that has finished. :class:`RedisTaskEventStream` tails that stream for replicas that do not run
the task themselves. A store serves one agent: its keys are scoped by the agent's name, so the replicas
of an agent share its tasks and other agents never see or touch them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator
from typing import Any

from a2a.server.cluster import (
    ConcurrentTaskModificationError,
    StoredTask,
    TaskEventStream,
    TaskVersion,
    VersionedEvent,
    VersionedTaskStore,
)
from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import Event
from a2a.server.owner_resolver import OwnerResolver, resolve_user_scope
from a2a.types.a2a_pb2 import ListTasksRequest, ListTasksResponse, StreamResponse, Task, TaskState
from a2a.utils.constants import DEFAULT_LIST_TASKS_PAGE_SIZE
from a2a.utils.proto_utils import to_stream_response
from a2a.utils.task import ListTasksCursor, decode_list_tasks_cursor, encode_list_tasks_cursor

from podium.bus.autopipeline import coalesced
from podium.bus.backoff import TRANSIENT, through_outages
from podium.bus.errors import ConfigError
from podium.bus.keys import Keys
from podium.bus.notify import notifier_for
from podium.bus.owners import is_admin
from podium.bus.states import TERMINAL
from podium.bus.text import text

logger = logging.getLogger(__name__)

# How long a store call waits for Redis to come back (a restart, a failover) before it fails.
READ_OUTAGE_S = 5.0
SAVE_OUTAGE_S = 30.0
_TERMINAL_ARG = ",".join(str(int(s)) for s in TERMINAL)
TASK_TTL_ENV = "PODIUM_TASK_TTL"
DEFAULT_TASK_TTL_S = 7 * 24 * 3600


def live_task_ttl(ttl_s: int) -> int:
    """How long a task that has not finished is kept after its last update: ``ttl_s``, but never less than the
    default, so a task waiting quietly (a long step, an approval) outlives a short ``PODIUM_TASK_TTL``."""
    return max(ttl_s, DEFAULT_TASK_TTL_S)


def task_ttl_from_env() -> int:
    """Seconds a task is kept after its last update (its state, events and index entry; the orchestrator's
    checkpoint and trace of it too): ``PODIUM_TASK_TTL``, default 7 days. Raises ``ConfigError`` naming the
    variable when it is not a whole number of seconds of at least 1."""
    raw = os.environ.get(TASK_TTL_ENV, "").strip()
    if not raw:
        return DEFAULT_TASK_TTL_S
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{TASK_TTL_ENV} must be a whole number of seconds (at least 1), got {raw!r}")
    return value


# KEYS: task hash, events stream. ARGV: task bytes, prev version, is_cancel, event bytes, owner (recorded by
# the write that creates the task, kept by every later one, e.g. an admin's cancel),
# state, updated ms, events maxlen, terminal states (comma list), ttl seconds (0 = none), agent, write id,
# ttl seconds while the task is not finished (at least the finished one: a quiet live task must not expire).
# Returns the new version, or -1 when the write is refused: a finished task never changes again, a
# cancel needs the task to exist, any other write needs the version it read. A live task's events are
# never trimmed (a subscriber may still need every one); the length cap applies once the task is terminal.
# The same write sent again (its reply was lost to a dropped connection, so the caller retried it: same
# write id) finds itself applied and returns its version again, changing nothing: a retry never turns
# into a conflict, while every other writer's still does.
_SAVE = """
local row = redis.call('HMGET', KEYS[1], 'version', 'state', 'write')
local cur = tonumber(row[1] or '0')
if row[3] == ARGV[12] then return cur end
for s in string.gmatch(ARGV[9], '[^,]+') do
  if row[2] == s then return -1 end
end
if ARGV[3] == '1' then
  if cur == 0 then return -1 end
elseif cur ~= tonumber(ARGV[2]) then
  return -1
end
local new = cur + 1
redis.call('HSET', KEYS[1], 'task', ARGV[1], 'version', new, 'state', ARGV[6], 'updated', ARGV[7], 'write', ARGV[12])
if cur == 0 then redis.call('HSET', KEYS[1], 'owner', ARGV[5]) end
if ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'agent', ARGV[11]) end
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'v', new, 'e', ARGV[4])
end
for s in string.gmatch(ARGV[9], '[^,]+') do
  if ARGV[6] == s and tonumber(ARGV[8]) > 0 then redis.call('XTRIM', KEYS[2], 'MAXLEN', ARGV[8]) end
end
local ttl = tonumber(ARGV[10])
if ttl > 0 then
  local finished = false
  for s in string.gmatch(ARGV[9], '[^,]+') do
    if ARGV[6] == s then finished = true end
  end
  if not finished then ttl = math.max(ttl, tonumber(ARGV[13])) end
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return new
"""

_LIST_SCAN_LIMIT = 10_000  # most recent tasks considered by ListTasks


async def stored_state(redis: Any, keys: Keys, agent: str, task_id: str) -> int | None:
    """The stored A2A state of ``agent``'s task ``task_id`` (None: no such task), whoever owns it: for
    the agent's own bookkeeping (an orchestrator resuming its runs), never an answer to a caller.
    Raises ``redis.RedisError``."""
    raw = await redis.hget(keys.task(agent, task_id), "state")
    return None if raw is None else int(raw)


async def stored_owner(redis: Any, keys: Keys, agent: str, task_id: str) -> str | None:
    """Who owns ``agent``'s task ``task_id`` (the caller it belongs to; None: no such task).
    Raises ``redis.RedisError``."""
    raw = await redis.hget(keys.task(agent, task_id), "owner")
    return None if raw is None else text(raw)


class RedisTaskStore(VersionedTaskStore):
    """A ``VersionedTaskStore`` on Redis with optimistic versioning (a counter per task), for the tasks of
    ``agent`` (its name is also kept beside each task, for the console's task list)."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        agent: str,
        *,
        owner_resolver: OwnerResolver = resolve_user_scope,
        events_maxlen: int = 10_000,
        ttl_s: int | None = None,
    ) -> None:
        self._redis = coalesced(redis)  # concurrent tasks' writes share round trips (bus.autopipeline)
        self._keys = keys
        self._agent = agent
        self._owner = owner_resolver
        self._events_maxlen = events_maxlen
        self._ttl_s = task_ttl_from_env() if ttl_s is None else ttl_s  # raises ConfigError
        self._save = self._redis.register_script(_SAVE)
        self._notifier = notifier_for(redis)  # the embedded bus cannot block on XREAD

    async def save(
        self,
        task: Task,
        *,
        event: Event | None = None,
        prev: Task | None = None,
        prev_version: TaskVersion,
        context: ServerCallContext,
    ) -> TaskVersion:
        """Write ``task`` if the stored version is still ``prev_version``.

        Raises ``ConcurrentTaskModificationError`` when another writer got there first, when the stored
        task has already finished (completed, cancelled, failed, rejected: it never changes again), or,
        for a cancel, when the task is absent.
        """
        del prev
        cancel = task.status.state == TaskState.TASK_STATE_CANCELED
        prev_value = 0 if prev_version.is_missing else _as_int(prev_version)
        event_bytes = to_stream_response(event).SerializeToString() if event is not None else b""
        now_ms = int(time.time() * 1000)
        # The index lives in another slot, so it is written outside the script (best effort). It only bounds
        # which tasks ListTasks considers; their order comes from the tasks themselves. Issued before the
        # script, without waiting, it shares the script's round trip (bus.autopipeline); an entry whose first
        # save then fails names a task that exists already or is skipped by ListTasks.
        index = None
        if prev_version.is_missing:
            index = asyncio.ensure_future(
                self._redis.zadd(self._keys.task_index(self._agent), {task.id: now_ms})
            )
            index.add_done_callback(_retrieved)  # awaited below, unless the save fails first
            if self._ttl_s > 0:  # entries of tasks created longer ago than the TTL name expired tasks
                prune = asyncio.ensure_future(
                    self._redis.zremrangebyscore(
                        self._keys.task_index(self._agent), "-inf", now_ms - self._ttl_s * 1000
                    )
                )
                prune.add_done_callback(_retrieved)  # best effort: the next new task prunes again
        # A save lost to a Redis restart would fail a running task for good: ride a short outage out
        # instead. A new task's first save fails sooner when an HTTP caller waits for the answer (it gets a
        # prompt error); over the bus nobody holds a connection, the caller's deadline governs, and failing
        # the save would fail a task whose executor may already be acting. The write id makes a retry whose
        # first try was applied (its reply lost) find itself done.
        write_id = os.urandom(12).hex()
        new = await through_outages(
            lambda: self._save(
                keys=[self._keys.task(self._agent, task.id), self._keys.task_events(self._agent, task.id)],
                args=[
                    task.SerializeToString(),
                    prev_value,
                    "1" if cancel else "0",
                    event_bytes,
                    self._owner(context),
                    int(task.status.state),
                    now_ms,
                    self._events_maxlen,
                    _TERMINAL_ARG,
                    self._ttl_s,
                    self._agent,
                    write_id,
                    live_task_ttl(self._ttl_s),
                ],
            ),
            within=SAVE_OUTAGE_S if not prev_version.is_missing or _over_the_bus(context) else READ_OUTAGE_S,
        )
        if index is None:  # the index orders by last update, so a live task outlives the prune below
            touch = asyncio.ensure_future(
                self._redis.zadd(self._keys.task_index(self._agent), {task.id: now_ms}, xx=True)
            )
            touch.add_done_callback(_retrieved)
        if index is not None:
            try:
                await index
            except TRANSIENT:  # Redis went away as it was sent: the save waited, so the index write does too
                await through_outages(
                    lambda: self._redis.zadd(self._keys.task_index(self._agent), {task.id: now_ms}),
                    within=SAVE_OUTAGE_S,
                )
        if int(new) < 0:
            raise ConcurrentTaskModificationError(task.id)
        if self._notifier is not None:
            self._notifier.notify(self._keys.task_events(self._agent, task.id))
        return TaskVersion(int(new))

    async def get(self, task_id: str, context: ServerCallContext) -> StoredTask | None:
        key = self._keys.task(self._agent, task_id)
        raw = await through_outages(
            lambda: self._redis.hmget(key, ["task", "version", "owner"]), within=READ_OUTAGE_S
        )
        # Another caller's task and no task at all are the same answer, after the same single read.
        if raw[0] is None or not _visible(text(raw[2]), self._owner(context), context):
            return None
        task = Task()
        task.ParseFromString(raw[0])
        return StoredTask(task, TaskVersion(int(raw[1])))

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        owner = self._owner(context)
        ids = await self._redis.zrevrange(self._keys.task_index(self._agent), 0, _LIST_SCAN_LIMIT - 1)
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(self._keys.task(self._agent, text(task_id)), ["task", "owner"])
            rows = await pipe.execute()
        tasks: list[Task] = []
        for raw, row_owner in rows:
            if raw is None or not _visible(text(row_owner), owner, context):
                continue
            task = Task()
            task.ParseFromString(raw)
            if params.context_id and task.context_id != params.context_id:
                continue
            if params.status and task.status.state != params.status:
                continue
            if params.HasField("status_timestamp_after") and not (
                task.status.HasField("timestamp")
                and task.status.timestamp.ToNanoseconds() >= params.status_timestamp_after.ToNanoseconds()
            ):
                continue
            tasks.append(task)
        tasks.sort(key=_sort_key, reverse=True)
        start = 0
        if params.page_token:
            cursor = decode_list_tasks_cursor(params.page_token)
            if cursor is not None:
                after = cursor.sort_key()
                start = next((i for i, t in enumerate(tasks) if _sort_key(t) < after), len(tasks))
        page_size = params.page_size or DEFAULT_LIST_TASKS_PAGE_SIZE
        end = start + page_size
        next_token = encode_list_tasks_cursor(_cursor_for(tasks[end - 1])) if end < len(tasks) else None
        return ListTasksResponse(
            next_page_token=next_token, tasks=tasks[start:end], total_size=len(tasks), page_size=page_size
        )

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        if await self.get(task_id, context) is None:
            return
        await self._redis.delete(
            self._keys.task(self._agent, task_id), self._keys.task_events(self._agent, task_id)
        )
        await self._redis.zrem(self._keys.task_index(self._agent), task_id)


class RedisTaskEventStream(TaskEventStream):
    """Tails a task's event stream, written by :class:`RedisTaskStore` in the same script as the task."""

    def __init__(
        self, redis: Any, keys: Keys, agent: str, *, block_ms: int = 1000, linger_s: int = 3600
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._agent = agent
        self._block_ms = block_ms
        self._linger_s = min(linger_s, task_ttl_from_env())  # never outlives the task (PODIUM_TASK_TTL)
        self._notifier = notifier_for(redis)

    async def publish(self, task_id: str, event: VersionedEvent) -> None:
        """Nothing to do: the store appended the event atomically with the task write."""
        del task_id, event

    async def subscribe(  # type: ignore[override]
        self, task_id: str, *, after: TaskVersion
    ) -> AsyncGenerator[VersionedEvent, None]:
        """Yield the task's events newer than ``after``, then keep tailing until closed."""
        key = self._keys.task_events(self._agent, task_id)
        last = "0-0"
        while True:
            if self._notifier is not None:
                since = self._notifier.version(key)
                entries = await self._redis.xread({key: last}, count=100)
                if not entries:
                    await self._notifier.wait(key, since, self._block_ms / 1000)
                    continue
            else:
                entries = await self._redis.xread({key: last}, count=100, block=self._block_ms)
                if not entries:
                    continue
            for entry_id, fields in entries[0][1]:
                last = text(entry_id)
                version = TaskVersion(int(fields[b"v"]))
                if not version.is_after(after):
                    continue
                response = StreamResponse()
                response.ParseFromString(fields[b"e"])
                yield VersionedEvent(event=_event_of(response), version=version)

    async def destroy(self, task_id: str) -> None:
        """Let a finished task's log linger for late subscribers, then expire."""
        await self._redis.expire(self._keys.task_events(self._agent, task_id), self._linger_s)


def _visible(owner: str, caller: str, context: ServerCallContext) -> bool:
    """Whether ``caller`` may see a task ``owner`` created: its own, any task for an admin (or a caller nobody
    authenticated), and a task nobody owns (created by such a caller) for everyone."""
    return owner == caller or not owner or is_admin(context)


def _over_the_bus(context: ServerCallContext) -> bool:
    """True for a request the bus delivered (``bus.a2a_server`` names its envelope in the context)."""
    return "envelope_id" in context.state


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _event_of(response: StreamResponse) -> Event:
    which = response.WhichOneof("payload")
    if which is None:
        raise ValueError("stored task event has no payload")
    return getattr(response, which)


def _as_int(version: TaskVersion) -> int:
    value = version._value  # TaskVersion exposes no accessor; stores own the value they wrap
    if not isinstance(value, int):
        raise TypeError(f"RedisTaskStore needs integer versions, got {type(value).__name__}")
    return value


def _sort_key(task: Task) -> tuple[bool, int, str]:
    has = task.HasField("status") and task.status.HasField("timestamp")
    return (has, task.status.timestamp.ToNanoseconds() if has else 0, task.id)


def _cursor_for(task: Task) -> ListTasksCursor:
    has, ts, task_id = _sort_key(task)
    return ListTasksCursor(timestamp_ns=ts if has else None, task_id=task_id)
