"""Fault tests on a real Redis: a consumer process killed mid-handler, and Redis itself killed and restarted
mid-stream. Recovery must need no help from the test."""

from __future__ import annotations

import sys
from collections import Counter

import anyio
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from podium.bus import Consumer, Delivery, Envelope, Keys, StreamBus
from podium.bus.connection import connect
from tests.bus.helpers import pending_count, running, until
from tests.support import Proc, RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.real_redis]

AGENT = "worker"


async def test_sigkilled_consumer_process_leaves_work_that_is_reclaimed(redis_url: str, keys: Keys) -> None:
    client = connect(redis_url)
    bus = StreamBus(client, keys)
    proc = Proc([sys.executable, "-m", "tests.bus.consumer_proc", redis_url, keys.namespace, AGENT, "victim"])
    try:
        env = Envelope(method="SendMessage", payload={"n": 1})
        entry_id = await bus.publish(keys.inbox(AGENT), env)

        async def started() -> bool:
            assert proc.alive(), f"consumer process exited:\n{proc.output()}"
            return bool(await client.exists(f"{keys.namespace}:started"))

        await until(started, within=30, what="the consumer process to start handling")
        proc.kill()
        assert await pending_count(bus, AGENT) == 1
        done: list[tuple[str, int, str]] = []

        async def handler(e: Envelope, d: Delivery) -> None:
            done.append((d.entry_id, d.deliveries, e.id))

        rescuer = Consumer(bus, AGENT, handler, consumer="rescuer", claim_idle_ms=300)
        async with running(rescuer):
            await until(lambda: rescuer.acked == 1, what="the killed process's entry to be reclaimed")
        assert done == [(entry_id, 2, env.id)]
        assert await pending_count(bus, AGENT) == 0
    finally:
        proc.close()
        await client.aclose()


async def test_consumer_recovers_when_redis_is_killed_and_restarted(
    killable_redis: RedisServer, keys: Keys
) -> None:
    client = connect(killable_redis.url, socket_timeout=5, socket_connect_timeout=1)
    bus = StreamBus(client, keys)
    handled: Counter[str] = Counter()

    async def handler(env: Envelope, delivery: Delivery) -> None:
        handled[env.id] += 1

    published: set[str] = set()  # envelopes whose XADD Redis confirmed (fsynced: appendfsync always)

    async def publish(n: int) -> None:
        for i in range(n):
            env = Envelope(method="SendMessage", payload={"n": i})
            try:
                await bus.publish(keys.inbox(AGENT), env)
            except (RedisConnectionError, RedisTimeoutError, ConnectionError):
                await anyio.lowlevel.checkpoint()
                continue
            published.add(env.id)

    consumer = Consumer(bus, AGENT, handler, consumer="survivor", claim_idle_ms=500, block_ms=200)
    try:
        async with running(consumer):
            await publish(200)
            await until(lambda: len(handled) >= 100, what="some entries handled before the kill")
            killable_redis.kill()
            await publish(20)  # fail: Redis is down
            killable_redis.start()  # same port, same append-only file
            await publish(200)
            await until(lambda: published <= set(handled), within=30, what="every published entry handled")
            await until(lambda: _no_pending(bus), within=30, what="no entries left pending after recovery")
        assert len(published) >= 400
        assert published <= set(handled)
    finally:
        await client.aclose()


async def _no_pending(bus: StreamBus) -> bool:
    return await pending_count(bus, AGENT) == 0
