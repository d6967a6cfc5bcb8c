"""Consumer contract: ack after handling, one handling per entry, reclaim, retry, DLQ, malformed entries,
deadlines and graceful shutdown, on the real Redis and the embedded bus."""

from __future__ import annotations

import time
from collections import Counter

import anyio
import anyio.lowlevel
import pytest

from podium.bus import BusClosed, ConfigError, Consumer, Delivery, Envelope, Keys, Kind, StreamBus
from podium.bus.connection import connect
from tests.bus.helpers import pending_count, running, until
from tests.support import free_port

pytestmark = pytest.mark.anyio

AGENT = "worker"


def request(n: int = 0, **extra) -> Envelope:
    return Envelope(method="SendMessage", payload={"n": n}, **extra)


async def test_handles_in_order_and_acks_after_the_handler(bus: StreamBus) -> None:
    seen: list[int] = []
    pending_during: list[int] = []

    async def handler(env: Envelope, delivery: Delivery) -> None:
        pending_during.append(await pending_count(bus, AGENT))  # not acked while we run
        seen.append(env.payload["n"])
        assert delivery.deliveries == 1 and env.attempt == 1

    await bus.publish_many(bus.keys.inbox(AGENT), [request(i) for i in range(20)])
    consumer = Consumer(bus, AGENT, handler, consumer="c1", concurrency=1)
    async with running(consumer):
        await until(lambda: consumer.acked == 20, what="20 acks")
    assert seen == list(range(20))
    assert all(p >= 1 for p in pending_during)
    assert await pending_count(bus, AGENT) == 0


async def test_each_entry_handled_once_across_consumers(bus: StreamBus) -> None:
    counts: Counter[str] = Counter()

    async def handler(env: Envelope, delivery: Delivery) -> None:
        counts[env.id] += 1
        await anyio.lowlevel.checkpoint()

    consumers = [Consumer(bus, AGENT, handler, consumer=f"c{i}", batch=16, concurrency=8) for i in range(3)]
    envs = [request(i) for i in range(500)]
    async with running(*consumers):
        for start in range(0, 500, 50):
            await bus.publish_many(bus.keys.inbox(AGENT), envs[start : start + 50])
        await until(lambda: sum(c.acked for c in consumers) == 500, what="500 acks")
    assert set(counts) == {e.id for e in envs}
    assert set(counts.values()) == {1}
    assert await pending_count(bus, AGENT) == 0


async def test_cancelled_consumer_leaves_work_that_another_reclaims(bus: StreamBus) -> None:
    started = anyio.Event()
    finished: list[tuple[str, int, int]] = []

    async def stuck(env: Envelope, delivery: Delivery) -> None:
        started.set()
        await anyio.sleep_forever()

    async def good(env: Envelope, delivery: Delivery) -> None:
        finished.append((delivery.consumer, delivery.deliveries, env.attempt))

    env = request(1)
    await bus.publish(bus.keys.inbox(AGENT), env)
    first = Consumer(bus, AGENT, stuck, consumer="doomed", claim_idle_ms=200)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(first.run)
            await started.wait()
            tg.cancel_scope.cancel()  # dies mid-handler: no ack
    assert await pending_count(bus, AGENT) == 1
    second = Consumer(bus, AGENT, good, consumer="rescuer", claim_idle_ms=200)
    async with running(second):
        await until(lambda: second.acked == 1, what="the reclaimed entry to be acked")
    assert finished == [("rescuer", 2, 2)]
    assert second.reclaimed == 1
    assert await pending_count(bus, AGENT) == 0


async def test_failures_are_retried_then_dead_lettered_then_replayed(bus: StreamBus) -> None:
    attempts: list[int] = []
    broken = True

    async def handler(env: Envelope, delivery: Delivery) -> None:
        attempts.append(env.attempt)
        if broken:
            raise RuntimeError(f"boom {env.attempt}")

    reply_to = bus.keys.reply("caller")
    env = request(7, reply_to=reply_to)
    await bus.publish(bus.keys.inbox(AGENT), env)
    consumer = Consumer(bus, AGENT, handler, consumer="c1", max_deliveries=3, retry_backoff_ms=10)
    async with running(consumer):
        await until(lambda: consumer.dead_lettered == 1, what="the entry to be dead-lettered")
        assert attempts == [1, 2, 3]
        (letter,) = await bus.dlq_list(AGENT)
        assert letter.attempts == 3 and letter.error == "RuntimeError: boom 3" and letter.consumer == "c1"
        assert letter.decode() == env.model_copy(update={"attempt": 0})
        assert await pending_count(bus, AGENT) == 0
        ((_, answer),) = await bus.read(reply_to, "0", block_ms=None)
        assert isinstance(answer, Envelope) and answer.kind is Kind.ERROR
        assert answer.correlation_id == env.id
        assert answer.payload == {
            "error": {"code": "DEAD_LETTERED", "message": "RuntimeError: boom 3", "data": {"attempts": 3}}
        }
        broken = False
        assert await bus.dlq_replay(AGENT) == 1
        await until(lambda: consumer.handled == 1, what="the replayed entry to be handled")
    assert attempts == [1, 2, 3, 1]
    assert await bus.dlq_list(AGENT) == []


async def test_a_retry_that_succeeds_is_not_dead_lettered(bus: StreamBus) -> None:
    async def flaky(env: Envelope, delivery: Delivery) -> None:
        if delivery.deliveries == 1:
            raise ValueError("transient")

    await bus.publish(bus.keys.inbox(AGENT), request())
    consumer = Consumer(bus, AGENT, flaky, consumer="c1", retry_backoff_ms=10)
    async with running(consumer):
        await until(lambda: consumer.acked == 1, what="the retried entry to be acked")
    assert (consumer.failed, consumer.handled, consumer.dead_lettered) == (1, 1, 0)


async def test_malformed_entries_go_to_the_dlq_at_once(bus: StreamBus) -> None:
    handled: list[int] = []

    async def handler(env: Envelope, delivery: Delivery) -> None:
        handled.append(env.payload["n"])

    inbox = bus.keys.inbox(AGENT)
    not_json = await bus.redis.xadd(inbox, {"e": "not json"})
    bad_schema = await bus.redis.xadd(inbox, {"e": '{"v": 1, "attempt": -1}'})
    no_field = await bus.redis.xadd(inbox, {"x": "no e field"})
    await bus.publish(inbox, request(42))
    consumer = Consumer(bus, AGENT, handler, consumer="c1", max_deliveries=5)
    async with running(consumer):
        await until(lambda: consumer.handled == 1 and consumer.dead_lettered == 3, what="3 dead letters")
    assert handled == [42]
    letters = {d.entry_id: d for d in await bus.dlq_list(AGENT)}  # dead-lettered concurrently: any order
    assert {d.attempts for d in letters.values()} == {1}
    assert "invalid envelope" in letters[not_json.decode()].error
    assert letters[not_json.decode()].envelope == "not json"
    assert "attempt" in letters[bad_schema.decode()].error
    assert "no field 'e'" in letters[no_field.decode()].error
    assert "no e field" in letters[no_field.decode()].envelope
    assert await pending_count(bus, AGENT) == 0


async def test_expired_deadline_is_not_executed_and_answered(bus: StreamBus) -> None:
    called: list[str] = []

    async def handler(env: Envelope, delivery: Delivery) -> None:
        called.append(env.id)

    reply_to = bus.keys.reply("late")
    late = request(1, reply_to=reply_to, deadline=time.time() - 1)
    await bus.publish(bus.keys.inbox(AGENT), late)
    consumer = Consumer(bus, AGENT, handler, consumer="c1")
    async with running(consumer):
        await until(
            lambda: consumer.expired == 1 and consumer.acked == 1, what="the expired entry to be acked"
        )
    assert called == []
    ((_, answer),) = await bus.read(reply_to, "0", block_ms=None)
    assert isinstance(answer, Envelope) and answer.kind is Kind.ERROR and answer.correlation_id == late.id
    assert answer.payload["error"]["code"] == "DEADLINE_EXPIRED"
    assert await pending_count(bus, AGENT) == 0


async def test_shutdown_lets_in_flight_work_finish_within_grace(bus: StreamBus) -> None:
    started, release = anyio.Event(), anyio.Event()

    async def handler(env: Envelope, delivery: Delivery) -> None:
        started.set()
        await release.wait()

    await bus.publish(bus.keys.inbox(AGENT), request())
    consumer = Consumer(bus, AGENT, handler, consumer="c1")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(consumer.run)
            await started.wait()
            tg.start_soon(consumer.stop, 30.0)
            await until(lambda: consumer._stopping, what="stop to begin")
            release.set()
    assert consumer.handled == 1 and consumer.acked == 1
    assert await pending_count(bus, AGENT) == 0


async def test_shutdown_past_grace_cancels_without_ack(bus: StreamBus) -> None:
    started = anyio.Event()

    async def handler(env: Envelope, delivery: Delivery) -> None:
        started.set()
        await anyio.sleep_forever()

    await bus.publish(bus.keys.inbox(AGENT), request())
    consumer = Consumer(bus, AGENT, handler, consumer="c1")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(consumer.run)
            await started.wait()
            await consumer.stop(grace=0.1)
    assert consumer.handled == 0 and consumer.acked == 0
    assert await pending_count(bus, AGENT) == 1


async def test_concurrency_is_bounded(bus: StreamBus) -> None:
    running_now, peak = 0, 0
    gate = anyio.Event()

    async def handler(env: Envelope, delivery: Delivery) -> None:
        nonlocal running_now, peak
        running_now += 1
        peak = max(peak, running_now)
        await gate.wait()
        running_now -= 1

    await bus.publish_many(bus.keys.inbox(AGENT), [request(i) for i in range(12)])
    consumer = Consumer(bus, AGENT, handler, consumer="c1", concurrency=4, batch=32)
    async with running(consumer):
        await until(lambda: running_now == 4, what="4 handlers running")
        info = await bus.redis.xpending(bus.keys.inbox(AGENT), AGENT)
        assert info["pending"] == 4  # never read more than it can run
        gate.set()
        await until(lambda: consumer.acked == 12, what="12 acks")
    assert peak == 4


async def test_bad_settings_fail_at_construction(bus: StreamBus) -> None:
    async def handler(env: Envelope, delivery: Delivery) -> None: ...

    with pytest.raises(ConfigError, match="concurrency"):
        Consumer(bus, AGENT, handler, consumer="c1", concurrency=0)
    with pytest.raises(ConfigError, match="consumer"):
        Consumer(bus, AGENT, handler, consumer="bad name")


async def test_consumer_recreates_a_lost_group(bus: StreamBus) -> None:
    seen: list[int] = []

    async def handler(env: Envelope, delivery: Delivery) -> None:
        seen.append(env.payload["n"])

    inbox = bus.keys.inbox(AGENT)
    consumer = Consumer(bus, AGENT, handler, consumer="c1", block_ms=100)
    async with running(consumer):
        await bus.publish(inbox, request(1))
        await until(lambda: seen == [1], what="the first entry")
        await bus.redis.delete(inbox)  # what a restarted Redis without persistence looks like
        await bus.publish(inbox, request(2))  # recreates the stream, but not the group
        await until(lambda: seen == [1, 2], what="the entry published after the group was lost")
    assert await pending_count(bus, AGENT) == 0


async def test_entry_that_keeps_killing_consumers_is_dead_lettered(bus: StreamBus) -> None:
    called: list[str] = []

    async def handler(env: Envelope, delivery: Delivery) -> None:
        called.append(env.id)

    inbox, reply_to = bus.keys.inbox(AGENT), bus.keys.reply("victim")
    env = request(3, reply_to=reply_to)
    await bus.ensure_group(inbox, AGENT, start_id="0")
    entry_id = await bus.publish(inbox, env)
    # Two consumers took it and died without acking: delivered twice already.
    await bus.redis.xreadgroup(AGENT, "dead-1", {inbox: ">"}, count=1)
    await bus.redis.xclaim(inbox, AGENT, "dead-2", 0, [entry_id])
    consumer = Consumer(bus, AGENT, handler, consumer="c1", max_deliveries=2, claim_idle_ms=100)
    async with running(consumer):
        await until(lambda: consumer.dead_lettered == 1, what="the poison entry to be dead-lettered")
    assert called == []
    (letter,) = await bus.dlq_list(AGENT)
    assert letter.entry_id == entry_id and letter.attempts == 2 and "delivered 3 times" in letter.error
    ((_, answer),) = await bus.read(reply_to, "0", block_ms=None)
    assert isinstance(answer, Envelope) and answer.payload["error"]["code"] == "DEAD_LETTERED"
    assert answer.payload["error"]["data"] == {"attempts": 2}
    assert await pending_count(bus, AGENT) == 0


async def test_embedded_consumer_waits_for_publishes_without_polling(keys: Keys) -> None:
    client = connect(None)
    reads = 0
    original = client.xreadgroup

    async def counting_xreadgroup(*args: object, **kwargs: object) -> object:
        nonlocal reads
        reads += 1
        return await original(*args, **kwargs)

    client.xreadgroup = counting_xreadgroup
    bus = StreamBus(client, keys)
    handled = anyio.Event()

    async def handler(env: Envelope, delivery: Delivery) -> None:
        handled.set()

    consumer = Consumer(bus, AGENT, handler, consumer="c1", block_ms=60_000)
    try:
        async with running(consumer):
            await until(lambda: reads >= 1, what="the first read")
            for _ in range(200):  # a polling reader would read again within a few loop iterations
                await anyio.lowlevel.checkpoint()
            assert reads == 1
            await bus.publish(bus.keys.inbox(AGENT), request())
            with anyio.fail_after(5):
                await handled.wait()
            assert reads <= 3
    finally:
        await client.aclose()


async def test_stop_while_redis_is_unreachable_returns(keys: Keys) -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    bus = StreamBus(client, keys)

    async def handler(env: Envelope, delivery: Delivery) -> None: ...

    consumer = Consumer(bus, AGENT, handler, consumer="c1")
    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consumer.run)
                await anyio.lowlevel.checkpoint()
                await consumer.stop()
        with pytest.raises(BusClosed):
            await consumer.run()
    finally:
        await client.aclose()


async def test_a_slow_handler_is_not_taken_for_a_dead_consumer(bus: StreamBus, bus_url: str | None) -> None:
    other_client = connect(bus_url)
    other_bus = StreamBus(other_client, bus.keys)
    probes = 0
    original = other_client.xpending_range

    async def counting_xpending_range(*args: object, **kwargs: object) -> object:
        nonlocal probes
        probes += 1
        return await original(*args, **kwargs)

    other_client.xpending_range = counting_xpending_range
    started, release = anyio.Event(), anyio.Event()
    seen: list[tuple[str, int]] = []

    async def slow(env: Envelope, delivery: Delivery) -> None:
        started.set()
        await release.wait()
        seen.append((delivery.consumer, delivery.deliveries))

    async def thief(env: Envelope, delivery: Delivery) -> None:
        seen.append((delivery.consumer, delivery.deliveries))

    await bus.publish(bus.keys.inbox(AGENT), request())
    slow_one = Consumer(bus, AGENT, slow, consumer="slow", claim_idle_ms=450)
    other = Consumer(other_bus, AGENT, thief, consumer="other", claim_idle_ms=450)
    try:
        async with running(slow_one):
            with anyio.fail_after(10):
                await started.wait()
            async with running(other):
                # the other consumer looks for idle entries every 150 ms: let it look for well past 450 ms
                await until(lambda: probes >= 5, what="the other consumer's reclaim probes")
                release.set()
                await until(lambda: slow_one.acked == 1, what="the slow handler to finish")
        assert seen == [("slow", 1)] and other.reclaimed == 0
    finally:
        await other_client.aclose()
