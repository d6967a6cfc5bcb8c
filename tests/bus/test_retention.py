"""Retention: inboxes lose only what every group acknowledged; dead letters, replies and task events keep
their own bounds. On the real Redis and the embedded bus, plus a backlog that outlives a SIGKILLed replica."""

from __future__ import annotations

import sys

import anyio
import pytest
from a2a.server.cluster import TaskVersion
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import Task, TaskState, TaskStatus, TaskStatusUpdateEvent

from podium.bus import Consumer, Delivery, Envelope, Keys, Kind, StreamBus
from podium.bus.a2a_client import BusClient
from podium.bus.connection import connect
from podium.bus.retention import Retention, RetentionPolicy, trim_through
from podium.bus.streams import REPLY_TTL_S, dead_letter_fields, text
from podium.bus.task_store import RedisTaskStore
from tests.bus.helpers import pending_count, running, until
from tests.support import Proc

pytestmark = pytest.mark.anyio


def policy(**overrides: float) -> RetentionPolicy:
    return RetentionPolicy(**{"interval_s": 0.05, **overrides})  # type: ignore[arg-type]


async def trimmed(retention: Retention, agent: str) -> int:
    """Inbox entries one retention pass removed."""
    return (await retention.run_once([agent]))[agent].inbox


async def ids(bus: StreamBus, stream: str) -> list[str]:
    return [text(i) for i, _ in await bus.redis.xrange(stream)]


async def test_inbox_keeps_everything_a_group_has_not_acknowledged(bus: StreamBus) -> None:
    inbox = bus.keys.inbox("w")
    retention = Retention(bus.redis, bus.keys, policy())
    published = [await bus.publish(inbox, Envelope(payload={"n": i})) for i in range(30)]
    assert await trimmed(retention, "w") == 0  # no group yet: nobody has even started reading
    await bus.ensure_group(inbox, "w", start_id="0")
    await bus.ensure_group(inbox, "tap", start_id="0")  # a second group, slower than the first
    await bus.redis.xreadgroup("w", "c1", {inbox: ">"}, count=20)
    await bus.redis.xack(inbox, "w", *published[:5], *published[6:20])  # [5] stays pending, 20.. undelivered
    await bus.redis.xreadgroup("tap", "c2", {inbox: ">"}, count=3)
    await bus.redis.xack(inbox, "tap", *published[:3])
    assert await trimmed(retention, "w") == 3  # "tap" has acknowledged only the first three
    assert await ids(bus, inbox) == published[3:]
    await bus.redis.xreadgroup("tap", "c2", {inbox: ">"})
    await bus.redis.xack(inbox, "tap", *published[3:])  # the tap is done with everything
    assert await trimmed(retention, "w") == 2  # stops at the entry pending in "w"
    assert await ids(bus, inbox) == published[5:]
    await bus.redis.xack(inbox, "w", published[5])
    assert await trimmed(retention, "w") == 15  # up to the last delivered; the rest was never delivered
    assert await ids(bus, inbox) == published[20:]


async def test_inbox_may_keep_recent_acknowledged_entries_for_inspection(bus: StreamBus) -> None:
    inbox = bus.keys.inbox("k")
    await bus.ensure_group(inbox, "k", start_id="0")
    old = [text(await bus.redis.xadd(inbox, {"e": "{}"}, id=f"{1000 + i}-0")) for i in range(10)]  # 1970
    recent = [await bus.publish(inbox, Envelope()) for _ in range(15)]
    await bus.redis.xreadgroup("k", "c", {inbox: ">"})
    await bus.redis.xack(inbox, "k", *old, *recent)
    keeping = Retention(bus.redis, bus.keys, policy(inbox_keep_s=3600))
    assert (await keeping.run_once(["k"]))["k"].inbox == 10  # only what is older than an hour
    assert await ids(bus, inbox) == recent
    assert await trimmed(Retention(bus.redis, bus.keys, policy()), "k") == 15  # by default, keeps none
    assert await bus.redis.xlen(inbox) == 0


async def test_one_call_removes_a_bounded_number_and_a_pass_removes_all(bus: StreamBus) -> None:
    inbox = bus.keys.inbox("big")
    await bus.ensure_group(inbox, "big", start_id="0")
    await bus.publish_many(inbox, [Envelope(payload={"n": i}) for i in range(600)])
    await bus.redis.xgroup_setid(inbox, "big", "$")  # all delivered and acknowledged
    retention = Retention(bus.redis, bus.keys, policy(max_per_call=100))
    assert 0 < await retention.trim_inbox("big") <= 100  # Redis is never busy with more in one call
    assert await trimmed(retention, "big") > 0 and await bus.redis.xlen(inbox) == 0


async def test_dead_letters_expire_by_age_and_length(bus: StreamBus) -> None:
    dlq = bus.keys.dlq("d")
    for i in range(3):  # letters from 1970: far older than any age limit
        await bus.redis.xadd(dlq, dead_letter_fields("{}", "old", 1, "c", f"1-{i}"), id=f"{1000 + i}-0")
    fresh = [
        text(await bus.redis.xadd(dlq, dead_letter_fields("{}", "new", 1, "c", "2-0"))) for _ in range(12)
    ]
    by_age = Retention(bus.redis, bus.keys, policy(dlq_max_age_s=3600, dlq_maxlen=0))
    assert (await by_age.run_once(["d"]))["d"].dead_letters == 3
    assert await ids(bus, dlq) == fresh
    by_length = Retention(bus.redis, bus.keys, policy(dlq_max_age_s=0, dlq_maxlen=10))
    assert (await by_length.run_once(["d"]))["d"].dead_letters == 2
    assert await ids(bus, dlq) == fresh[2:]


async def test_reply_streams_are_trimmed_by_their_reader_and_orphans_expire(bus: StreamBus) -> None:
    async with BusClient(bus.redis, bus.keys, sender="t") as client:
        for i in range(300):  # replies nobody waits for: the reader reads and drops them
            await bus.reply(client.reply_to, Envelope(kind=Kind.RESPONSE, correlation_id=f"x{i}"))

        async def drained() -> bool:
            return int(await bus.redis.xlen(client.reply_to)) == 0

        await until(drained, what="the reply stream to be trimmed as it is read")
        assert int(await bus.redis.ttl(client.reply_to)) > REPLY_TTL_S - 60  # the caller keeps it fresh
    stream = bus.keys.reply("gone")
    first = await bus.reply(stream, Envelope(kind=Kind.RESPONSE))
    second = await bus.reply(stream, Envelope(kind=Kind.RESPONSE))
    assert 0 < int(await bus.redis.ttl(stream)) <= REPLY_TTL_S  # a reply to a caller that is gone expires
    assert await trim_through(bus.redis, stream, first) == 1
    assert await ids(bus, stream) == [second]  # what was not read yet stays


async def test_a_live_tasks_events_are_kept_and_capped_once_it_ends(bus: StreamBus) -> None:
    store = RedisTaskStore(bus.redis, bus.keys, "agent", events_maxlen=5)
    ctx = ServerCallContext()
    task = Task(id="long", context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
    version = TaskVersion.MISSING
    for _ in range(30):
        event = TaskStatusUpdateEvent(task_id="long", context_id="c", status=task.status)
        version = await store.save(task, event=event, prev_version=version, context=ctx)
    events = bus.keys.task_events("agent", "long")
    assert await bus.redis.xlen(events) == 30  # a live task: a subscriber may still need every event
    task.status.state = TaskState.TASK_STATE_COMPLETED
    event = TaskStatusUpdateEvent(task_id="long", context_id="c", status=task.status)
    await store.save(task, event=event, prev_version=version, context=ctx)
    assert await bus.redis.xlen(events) == 5


@pytest.mark.real_redis
async def test_a_backlog_survives_retention_and_a_killed_replica(redis_url: str, keys: Keys) -> None:
    """A 300-request backlog, retention trimming every 50 ms throughout, a replica SIGKILLed holding 16:
    every request is still handled, exactly once."""
    agent, total = "backlog", 300
    client = connect(redis_url)
    bus = StreamBus(client, keys)
    inbox = keys.inbox(agent)
    retention = Retention(client, keys, policy())
    envs = [Envelope(method="SendMessage", payload={"n": i}) for i in range(total)]
    sent = {env.id for env in envs}
    proc = Proc([sys.executable, "-m", "tests.bus.consumer_proc", redis_url, keys.namespace, agent, "victim"])
    handled: dict[str, int] = {}

    async def handler(env: Envelope, delivery: Delivery) -> None:
        handled[env.id] = handled.get(env.id, 0) + 1

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(retention.run, [agent])  # trimming all along, every 50 ms
            await bus.publish_many(inbox, envs)

            async def victim_holds_its_share() -> bool:
                assert proc.alive(), f"consumer process exited:\n{proc.output()}"
                groups = await client.xinfo_groups(inbox)  # the process creates the group when it starts
                return bool(groups) and await pending_count(bus, agent) == 16  # its concurrency

            await until(victim_holds_its_share, within=30, what="the consumer process to take entries")
            proc.kill()
            passes = retention.passes
            await until(lambda: retention.passes >= passes + 3, what="retention passes over the backlog")
            assert await client.xlen(inbox) == total  # nothing acknowledged, so nothing trimmed
            rescuer = Consumer(bus, agent, handler, consumer="rescuer", claim_idle_ms=300, concurrency=8)
            async with running(rescuer):
                await until(lambda: len(handled) == total, within=60, what="every request to be handled")
                assert rescuer.reclaimed >= 16  # the victim's entries came back through XAUTOCLAIM
            tg.cancel_scope.cancel()
        assert set(handled) == sent and all(n == 1 for n in handled.values())
        await retention.run_once([agent])
        assert await client.xlen(inbox) == 0  # all acknowledged now: all trimmed
    finally:
        proc.close()
        await client.aclose()
