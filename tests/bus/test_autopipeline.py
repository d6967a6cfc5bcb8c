"""The auto-pipeline on a real Redis: concurrent commands share one round trip, yet each caller keeps its
own reply and error, its order, and the cancellation semantics of a direct call; it rides out a restart.
The same on Redis Cluster is in ``test_cluster.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from podium.bus.autopipeline import AutoPipeline, coalesced
from podium.bus.connection import connect
from podium.bus.keys import Keys
from podium.bus.streams import StreamBus
from tests.bus.helpers import until
from tests.support import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.real_redis]

# Holds the connection it runs on for a second (no replica will ever acknowledge): a pipeline in flight.
HOLD = ("WAIT", 1, 1000)


async def test_concurrent_callers_share_one_pipeline_and_keep_their_own_results(
    redis: Any, keys: Keys
) -> None:
    pipe = AutoPipeline(redis)
    k = f"{keys.namespace}:k"
    await redis.set(f"{k}:text", "not a number")
    script = pipe.register_script("return {KEYS[1], ARGV[1]}")
    before = pipe.pipelines
    results = await asyncio.gather(
        pipe.incr(f"{k}:n"),
        pipe.incr(f"{k}:text"),  # fails, for this caller alone
        pipe.hset(f"{k}:h", mapping={"a": "1", "b": "2"}),
        pipe.hmget(f"{k}:h", ["a", "b", "missing"]),
        script(keys=[f"{k}:s"], args=["x"]),  # not yet loaded: NOSCRIPT, then loaded and run for this caller
        pipe.xadd(f"{k}:stream", {"e": "1"}),
        pipe.incr(f"{k}:n"),
        return_exceptions=True,
    )
    n1, bad, hset, hmget, scripted, entry, n2 = results
    assert (n1, n2) == (1, 2)  # one caller's commands, in the order issued
    assert isinstance(bad, ResponseError) and "not an integer" in str(bad)
    assert hset == 2 and hmget == [b"1", b"2", None]  # each reply parsed as the direct call parses it
    assert scripted == [f"{k}:s".encode(), b"x"]
    assert isinstance(entry, bytes) and await redis.xlen(f"{k}:stream") == 1
    # The six commands issued in this turn went out as one pipeline (the HSET before the HMGET took effect
    # first); the script's coroutine starts a turn later: its EVALSHA, and after NOSCRIPT the retry.
    assert (pipe.pipelines - before, pipe.commands) == (3, 8)


async def test_order_of_one_callers_commands_holds_across_pipelines(redis: Any, keys: Keys) -> None:
    pipe = AutoPipeline(redis)
    key = f"{keys.namespace}:order"
    futures = []
    for i in range(200):
        futures.append(pipe.rpush(key, i))  # fired without waiting, spread over many loop turns
        if i % 7 == 0:
            await anyio.lowlevel.checkpoint()
    assert await asyncio.gather(*futures) == list(range(1, 201))
    assert [int(v) for v in await redis.lrange(key, 0, -1)] == list(range(200))
    assert pipe.pipelines > 1  # it did span several pipelines


async def test_a_caller_cancelled_while_queued_never_sends_its_command(redis: Any, keys: Keys) -> None:
    pipe = AutoPipeline(redis)
    n = f"{keys.namespace}:n"
    results: dict[str, Any] = {}
    victim = anyio.CancelScope()

    async def call(name: str, *command: Any) -> None:
        results[name] = await pipe.execute_command(*command)

    async def cancelled_caller() -> None:
        with victim:
            await call("cancelled", "INCRBY", n, 100)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "hold", *HOLD)
        await until(lambda: pipe.in_flight, what="the first pipeline in flight")
        tg.start_soon(cancelled_caller)
        tg.start_soon(call, "kept", "INCRBY", n, 1)
        await until(lambda: pipe.queued == 2, what="two commands queued behind it")
        victim.cancel()
    assert results == {"hold": 0, "kept": 1}
    assert await redis.get(n) == b"1"  # the cancelled caller's INCRBY 100 was never sent


async def test_a_caller_cancelled_in_flight_leaves_the_others_their_replies(redis: Any, keys: Keys) -> None:
    pipe = AutoPipeline(redis)
    n = f"{keys.namespace}:n"
    got: dict[str, Any] = {}
    victim = anyio.CancelScope()

    async def cancelled_caller() -> None:
        with victim:
            got["victim"] = await pipe.incr(n)

    async def other() -> None:
        got["other"] = await pipe.execute_command(*HOLD)

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancelled_caller)
        tg.start_soon(other)
        await until(lambda: pipe.in_flight, what="the pipeline in flight")
        victim.cancel()
    assert "victim" not in got and got["other"] == 0
    assert await redis.get(n) == b"1"  # its command had left: it ran, as a direct call's would
    assert await pipe.incr(n) == 2  # and the pipeline carries on


async def test_callers_get_the_error_while_redis_is_down_and_replies_once_it_is_back(
    killable_redis: RedisServer, keys: Keys
) -> None:
    client = connect(killable_redis.url, socket_timeout=5, socket_connect_timeout=1)
    try:
        pipe = coalesced(client)
        bus = StreamBus(client, keys)
        assert bus.writes is pipe  # one auto-pipeline per client, shared by the whole process
        inbox = keys.inbox("worker")
        await asyncio.gather(*(pipe.incr(f"{keys.namespace}:n") for _ in range(5)))
        # Direct calls at once (a blocking read, a transaction) leave more connections in the pool: once
        # Redis is gone they are all stale, and none may fail a pipeline after it is back.
        await asyncio.gather(*(client.incr(f"{keys.namespace}:n") for _ in range(3)))
        killable_redis.kill()
        with anyio.fail_after(10):
            down = await asyncio.gather(
                *(pipe.incr(f"{keys.namespace}:n") for _ in range(5)),
                bus.reply(keys.reply("caller"), _envelope()),
                return_exceptions=True,
            )
        assert all(isinstance(r, RedisConnectionError) for r in down), down
        killable_redis.start()  # same port, same append-only file; the script cache is gone
        with anyio.fail_after(10):
            up = await asyncio.gather(
                client.incr(f"{keys.namespace}:direct"),  # takes the pool's freshest connection
                *(pipe.incr(f"{keys.namespace}:n") for _ in range(5)),
                bus.reply(keys.reply("caller"), _envelope()),
                bus.publish(inbox, _envelope()),
            )
        assert up[0] == 1 and sorted(up[1:6]) == [9, 10, 11, 12, 13]  # nothing lost, nothing applied twice
        assert await client.xlen(keys.reply("caller")) == 1 and await client.xlen(inbox) == 1
    finally:
        await client.aclose()


async def test_the_embedded_bus_is_not_wrapped() -> None:
    client = connect(None)
    try:
        assert coalesced(client) is client
        redis_client = connect("redis://127.0.0.1:1/0")
        assert coalesced(redis_client) is coalesced(redis_client)
        assert coalesced(coalesced(redis_client)) is coalesced(redis_client)
        await redis_client.aclose()
    finally:
        await client.aclose()


def _envelope() -> Any:
    from podium.bus.envelope import Envelope

    return Envelope(method="SendMessage", payload={"n": 1})
