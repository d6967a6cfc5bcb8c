"""RedisTaskStore / RedisTaskEventStream contract, on real Redis and on the embedded bus."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from a2a.auth.user import User
from a2a.server.cluster import ConcurrentTaskModificationError, TaskVersion
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import ListTasksRequest, Task, TaskState, TaskStatus, TaskStatusUpdateEvent
from starlette.authentication import AuthCredentials

from podium.bus.connection import connect
from podium.bus.errors import ConfigError
from podium.bus.keys import Keys
from podium.bus.task_store import TASK_TTL_ENV, RedisTaskEventStream, RedisTaskStore, task_ttl_from_env

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["redis", "embedded"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        c = connect(url)
    else:
        c = connect(None)
    yield c
    await c.aclose()


def _task(task_id: str, state: Any, context_id: str = "ctx") -> Task:
    t = Task(id=task_id, context_id=context_id, status=TaskStatus(state=state))
    t.status.timestamp.GetCurrentTime()
    return t


def _ctx() -> ServerCallContext:
    return ServerCallContext()


async def test_versions_compare_and_swap(client) -> None:
    store = RedisTaskStore(client, Keys(f"t{uuid.uuid4().hex[:8]}"), "agent")
    t = _task("a", TaskState.TASK_STATE_SUBMITTED)
    v1 = await store.save(t, prev_version=TaskVersion.MISSING, context=_ctx())
    with pytest.raises(ConcurrentTaskModificationError):
        await store.save(t, prev_version=TaskVersion.MISSING, context=_ctx())
    t.status.state = TaskState.TASK_STATE_WORKING
    v2 = await store.save(t, prev_version=v1, context=_ctx())
    assert v2.is_after(v1)
    with pytest.raises(ConcurrentTaskModificationError):  # stale writer
        await store.save(t, prev_version=v1, context=_ctx())
    stored = await store.get("a", _ctx())
    assert stored is not None and stored.version == v2
    assert stored.task.status.state == TaskState.TASK_STATE_WORKING
    assert await store.get("missing", _ctx()) is None


async def test_cancel_overwrites_running_but_not_finished(client) -> None:
    store = RedisTaskStore(client, Keys(f"t{uuid.uuid4().hex[:8]}"), "agent")
    running = _task("r", TaskState.TASK_STATE_WORKING)
    await store.save(running, prev_version=TaskVersion.MISSING, context=_ctx())
    cancel = _task("r", TaskState.TASK_STATE_CANCELED)
    await store.save(cancel, prev_version=TaskVersion(99), context=_ctx())  # no version check for cancel
    with pytest.raises(ConcurrentTaskModificationError):  # already terminal
        await store.save(cancel, prev_version=TaskVersion(99), context=_ctx())
    with pytest.raises(ConcurrentTaskModificationError):  # absent
        await store.save(
            _task("none", TaskState.TASK_STATE_CANCELED), prev_version=TaskVersion(1), context=_ctx()
        )


async def test_list_filters_and_pages(client) -> None:
    store = RedisTaskStore(client, Keys(f"t{uuid.uuid4().hex[:8]}"), "agent")
    for i in range(5):
        await store.save(_task(f"t{i}", TaskState.TASK_STATE_COMPLETED, context_id="c1" if i % 2 else "c2"),
                         prev_version=TaskVersion.MISSING, context=_ctx())  # fmt: skip
    page = await store.list(ListTasksRequest(page_size=2), _ctx())
    assert page.total_size == 5 and len(page.tasks) == 2 and page.next_page_token
    seen = [t.id for t in page.tasks]
    while page.next_page_token:
        page = await store.list(ListTasksRequest(page_size=2, page_token=page.next_page_token), _ctx())
        seen += [t.id for t in page.tasks]
    assert sorted(seen) == [f"t{i}" for i in range(5)]
    only_c1 = await store.list(ListTasksRequest(context_id="c1"), _ctx())
    assert {t.id for t in only_c1.tasks} == {"t1", "t3"}


async def test_event_stream_tails_events_after_a_version(client) -> None:
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    store = RedisTaskStore(client, keys, "agent")
    stream = RedisTaskEventStream(client, keys, "agent", block_ms=100)
    t = _task("e", TaskState.TASK_STATE_SUBMITTED)
    v = await store.save(t, event=t, prev_version=TaskVersion.MISSING, context=_ctx())
    got: list[int] = []

    async def tail() -> None:
        async for ev in stream.subscribe("e", after=v):
            got.append(int(ev.event.status.state))
            if ev.event.status.state == TaskState.TASK_STATE_COMPLETED:
                return

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(tail)
            for state in (TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED):
                t.status.state = state
                update = TaskStatusUpdateEvent(task_id="e", context_id="ctx", status=TaskStatus(state=state))
                v = await store.save(t, event=update, prev_version=v, context=_ctx())
    assert got == [TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED]


TERMINAL_STATES = (
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_REJECTED,
)


@pytest.mark.parametrize("final", TERMINAL_STATES, ids=lambda s: TaskState.Name(s))
async def test_a_finished_task_never_changes_again(client, final) -> None:
    """Even a writer holding the current version cannot move a finished task: a cancel that landed is
    never followed by COMPLETED, a completed task is never cancelled, and no event is logged."""
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    store = RedisTaskStore(client, keys, "agent")
    t = _task("f", TaskState.TASK_STATE_WORKING)
    v = await store.save(t, prev_version=TaskVersion.MISSING, context=_ctx())
    v = await store.save(_task("f", final), prev_version=v, context=_ctx())
    events = await client.xlen(keys.task_events("agent", "f"))
    for later in (*TERMINAL_STATES, TaskState.TASK_STATE_WORKING):
        update = TaskStatusUpdateEvent(task_id="f", context_id="ctx", status=TaskStatus(state=later))
        with pytest.raises(ConcurrentTaskModificationError):
            await store.save(_task("f", later), event=update, prev_version=v, context=_ctx())
    stored = await store.get("f", _ctx())
    assert stored is not None and stored.version == v and stored.task.status.state == final
    assert await client.xlen(keys.task_events("agent", "f")) == events


async def test_each_agent_has_its_own_tasks(client) -> None:
    """Two agents' stores in one namespace: neither reads, lists, cancels or deletes the other's task;
    two stores of one agent (its replicas) share them."""
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    echo, echo_replica, writer = (RedisTaskStore(client, keys, n) for n in ("echo", "echo", "writer"))
    v = await echo.save(
        _task("x", TaskState.TASK_STATE_WORKING), prev_version=TaskVersion.MISSING, context=_ctx()
    )
    assert await writer.get("x", _ctx()) is None
    assert (await writer.list(ListTasksRequest(), _ctx())).tasks == []
    with pytest.raises(ConcurrentTaskModificationError):  # a cancel of a task the writer does not have
        await writer.save(_task("x", TaskState.TASK_STATE_CANCELED), prev_version=v, context=_ctx())
    await writer.delete("x", _ctx())
    shared = await echo_replica.get("x", _ctx())
    assert shared is not None and shared.version == v
    assert shared.task.status.state == TaskState.TASK_STATE_WORKING
    assert [t.id for t in (await echo_replica.list(ListTasksRequest(), _ctx())).tasks] == ["x"]
    # The same task id at the writer is another task altogether.
    await writer.save(
        _task("x", TaskState.TASK_STATE_COMPLETED), prev_version=TaskVersion.MISSING, context=_ctx()
    )
    mine = await echo.get("x", _ctx())
    assert mine is not None and mine.task.status.state == TaskState.TASK_STATE_WORKING


class _User(User):
    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self._name


async def test_a_task_is_visible_to_its_owner_only(client) -> None:
    store = RedisTaskStore(client, Keys(f"t{uuid.uuid4().hex[:8]}"), "agent")
    alice, bob = ServerCallContext(user=_User("alice")), ServerCallContext(user=_User("bob"))
    # bob's first: ListTasks reads newest first, so bob's passes alice's task before reaching his own
    await store.save(_task("b1", TaskState.TASK_STATE_WORKING), prev_version=TaskVersion.MISSING, context=bob)
    await anyio.sleep(0.002)  # a later index score
    await store.save(
        _task("a1", TaskState.TASK_STATE_WORKING), prev_version=TaskVersion.MISSING, context=alice
    )
    assert await store.get("a1", bob) is None
    got = await store.get("a1", alice)
    assert got is not None and got.task.id == "a1"
    assert [t.id for t in (await store.list(ListTasksRequest(), bob)).tasks] == ["b1"]
    await store.delete("a1", bob)  # not bob's: nothing happens
    assert await store.get("a1", alice) is not None
    # An admin client, and a caller nobody authenticated (an agent without credentials configured, which
    # then listens on loopback only), see every task; a write of theirs keeps the task's owner.
    ops = ServerCallContext(user=_User("ops"), state={"auth": AuthCredentials(["admin"])})
    for everyone in (ops, _ctx()):
        assert {t.id for t in (await store.list(ListTasksRequest(), everyone)).tasks} == {"a1", "b1"}
    stored = await store.get("a1", ops)
    assert stored is not None
    await store.save(_task("a1", TaskState.TASK_STATE_CANCELED), prev_version=stored.version, context=ops)
    assert [t.id for t in (await store.list(ListTasksRequest(), alice)).tasks] == ["a1"]
    assert await store.get("a1", bob) is None


async def test_tasks_expire(client) -> None:
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    store = RedisTaskStore(client, keys, "agent", ttl_s=1)
    t = _task("old", TaskState.TASK_STATE_SUBMITTED)
    v = await store.save(t, event=t, prev_version=TaskVersion.MISSING, context=_ctx())
    t.status.state = TaskState.TASK_STATE_COMPLETED
    await store.save(t, event=t, prev_version=v, context=_ctx())
    assert await store.get("old", _ctx()) is not None
    with anyio.fail_after(10):
        while await store.get("old", _ctx()) is not None or await client.exists(  # noqa: ASYNC110
            keys.task_events("agent", "old")
        ):
            await anyio.sleep(0.05)


async def test_podium_task_ttl_bounds_tasks_and_the_task_index(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PODIUM_TASK_TTL`` sets how long a finished task's keys live, and a new task drops the index entries of
    tasks last updated longer ago than that, so a system under steady load keeps a flat number of keys."""
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv(TASK_TTL_ENV, "120")
    store = RedisTaskStore(client, keys, "agent")
    old = _task("old", TaskState.TASK_STATE_SUBMITTED)
    v = await store.save(old, event=old, prev_version=TaskVersion.MISSING, context=_ctx())
    # a task not finished yet keeps the default (a quiet live task must not vanish), a finished one the TTL
    assert await client.ttl(keys.task("agent", "old")) > 6 * 24 * 3600
    old.status.state = TaskState.TASK_STATE_COMPLETED
    await store.save(old, event=old, prev_version=v, context=_ctx())
    assert 0 < await client.ttl(keys.task("agent", "old")) <= 120
    assert 0 < await client.ttl(keys.task_events("agent", "old")) <= 120
    await anyio.sleep(0.2)  # the save touched the index entry without waiting for it
    await client.zadd(keys.task_index("agent"), {"old": 1000})  # as if updated long ago (and expired since)
    new = _task("new", TaskState.TASK_STATE_SUBMITTED)
    await store.save(new, event=new, prev_version=TaskVersion.MISSING, context=_ctx())
    assert [_text(m) for m in await client.zrange(keys.task_index("agent"), 0, -1)] == ["new"]
    for bad in ("0", "soon", "-5"):
        monkeypatch.setenv(TASK_TTL_ENV, bad)
        with pytest.raises(ConfigError, match=f"{TASK_TTL_ENV} must be a whole number of seconds"):
            RedisTaskStore(client, keys, "agent")
    monkeypatch.delenv(TASK_TTL_ENV)
    assert task_ttl_from_env() == 7 * 24 * 3600


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def test_a_save_whose_reply_was_lost_is_not_a_conflict_when_retried(client) -> None:
    """The connection drops after Redis applied a save but before its reply came back (a restart, a
    network blip): the store sends it again, finds its own write applied, and goes on; one event only.
    Another writer's save with the same stale version is still refused."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    store = RedisTaskStore(client, keys, "agent")
    applied = store._save
    sent = 0

    async def reply_lost_once(**kwargs: Any) -> Any:
        nonlocal sent
        sent += 1
        result = await applied(**kwargs)
        if sent in (1, 3):
            raise RedisConnectionError("connection lost before the reply")
        return result

    store._save = reply_lost_once
    t = _task("lossy", TaskState.TASK_STATE_SUBMITTED)
    v1 = await store.save(t, event=t, prev_version=TaskVersion.MISSING, context=_ctx())
    t.status.state = TaskState.TASK_STATE_COMPLETED
    v2 = await store.save(t, event=t, prev_version=v1, context=_ctx())
    assert sent == 4 and v2.is_after(v1)
    stored = await store.get("lossy", _ctx())
    assert stored is not None and stored.version == v2
    assert await client.xlen(keys.task_events("agent", "lossy")) == 2  # each write's event once
    with pytest.raises(ConcurrentTaskModificationError):  # a different writer, same stale version
        await store.save(_task("lossy", TaskState.TASK_STATE_WORKING), prev_version=v1, context=_ctx())


async def test_list_filters_by_state_and_time_newest_first_and_pages_without_gaps(client) -> None:
    store = RedisTaskStore(client, Keys(f"t{uuid.uuid4().hex[:8]}"), "agent")
    states = [TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_WORKING] * 3
    for i, state in enumerate(states):  # t0 oldest ... t5 newest, one second apart
        t = _task(f"t{i}", state)
        t.status.timestamp.FromSeconds(1_700_000_000 + i)
        await store.save(t, prev_version=TaskVersion.MISSING, context=_ctx())
    everything = await store.list(ListTasksRequest(), _ctx())
    assert [t.id for t in everything.tasks] == ["t5", "t4", "t3", "t2", "t1", "t0"]  # newest first
    assert everything.total_size == 6 and everything.page_size > 0 and not everything.next_page_token
    working = await store.list(ListTasksRequest(status=TaskState.TASK_STATE_WORKING), _ctx())
    assert [t.id for t in working.tasks] == ["t5", "t3", "t1"] and working.total_size == 3
    since = ListTasksRequest()
    since.status_timestamp_after.FromSeconds(1_700_000_003)  # at or after t3's status time
    assert [t.id for t in (await store.list(since, _ctx())).tasks] == ["t5", "t4", "t3"]
    pages, token = [], ""
    while True:
        page = await store.list(ListTasksRequest(page_size=4, page_token=token), _ctx())
        assert page.page_size == 4 and page.total_size == 6
        pages.append([t.id for t in page.tasks])
        token = page.next_page_token
        if not token:
            break
    assert pages == [["t5", "t4", "t3", "t2"], ["t1", "t0"]]
    exact = await store.list(ListTasksRequest(page_size=6), _ctx())  # a full last page: no next token
    assert len(exact.tasks) == 6 and not exact.next_page_token


async def test_delete_removes_the_task_its_events_and_its_listing(client) -> None:
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    store = RedisTaskStore(client, keys, "agent")
    for task_id in ("gone", "kept"):
        t = _task(task_id, TaskState.TASK_STATE_COMPLETED)
        await store.save(t, event=t, prev_version=TaskVersion.MISSING, context=_ctx())
    await store.delete("gone", _ctx())
    assert await store.get("gone", _ctx()) is None
    assert not await client.exists(keys.task("agent", "gone"), keys.task_events("agent", "gone"))
    assert [t.id for t in (await store.list(ListTasksRequest(), _ctx())).tasks] == ["kept"]
    assert await client.zrange(keys.task_index("agent"), 0, -1) == [b"kept"]
    assert await store.get("kept", _ctx()) is not None


async def test_a_new_tasks_first_save_waits_out_an_outage_over_the_bus_and_fails_fast_over_http(
    killable_redis, monkeypatch
) -> None:
    """Redis goes away as two new tasks are saved: the one an HTTP caller waits for fails after the short
    wait (a prompt error); the one the bus delivered waits for Redis and is saved once it is back."""
    import podium.bus.task_store as task_store_module

    monkeypatch.setattr(task_store_module, "READ_OUTAGE_S", 0.5)
    client = connect(killable_redis.url)
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    store = RedisTaskStore(client, keys, "agent")
    await store.get("warm", _ctx())  # connected before the outage
    outcome: dict[str, Any] = {}

    async def save(name: str, context: ServerCallContext) -> None:
        try:
            t = _task(name, TaskState.TASK_STATE_SUBMITTED)
            outcome[name] = await store.save(t, prev_version=TaskVersion.MISSING, context=context)
        except Exception as exc:
            outcome[name] = exc

    try:
        killable_redis.stop()
        async with anyio.create_task_group() as tg:
            tg.start_soon(save, "http", _ctx())
            tg.start_soon(save, "bus", ServerCallContext(state={"envelope_id": "e1"}))
            await anyio.sleep(2.0)
            assert isinstance(outcome.get("http"), Exception) and "bus" not in outcome, outcome
            await anyio.to_thread.run_sync(killable_redis.start)
        assert isinstance(outcome["bus"], TaskVersion), outcome
        assert (await store.get("bus", _ctx())) is not None and await store.get("http", _ctx()) is None
    finally:
        await client.aclose()
