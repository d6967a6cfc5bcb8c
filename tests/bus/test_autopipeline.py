"""The auto-pipeline on a real Redis, on the lane and on redis-py's path: concurrent commands share one round trip, yet each caller keeps its
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


@pytest.fixture(params=["lane", "redis-py"])
def lane(request: pytest.FixtureRequest) -> bool:
    """Each test on both paths: the lane (bus.lane, where usable) and redis-py's own command path."""
    return bool(request.param == "lane")


# Holds the connection it runs on for a second (no replica will ever acknowledge): a pipeline in flight.
HOLD = ("WAIT", 1, 1000)


async def test_concurrent_callers_share_one_pipeline_and_keep_their_own_results(
    redis: Any, keys: Keys, lane: bool
) -> None:
    pipe = AutoPipeline(redis, lane=lane)
    k = f"{keys.namespace}:k"
    await redis.set(f"{k}:text", "not a number")
    script = pipe.register_script(f"-- {keys.namespace}\nreturn {{KEYS[1], ARGV[1]}}")  # new to Redis
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
    # On redis-py's path the six commands issued in this turn went out as one pipeline (the HSET before the
    # HMGET took effect first); the script's coroutine starts a turn later: its EVALSHA, and after NOSCRIPT
    # the retry. On a lane (bus.lane) the idle lane sent the first INCR at once and the other five waited
    # for it, joined by the EVALSHA; then the SCRIPT LOAD (which redis-py's path sends directly) and the retry.
    assert (pipe.pipelines - before, pipe.commands) == ((4, 9) if pipe._usable_lane else (3, 8))


async def test_order_of_one_callers_commands_holds_across_pipelines(
    redis: Any, keys: Keys, lane: bool
) -> None:
    pipe = AutoPipeline(redis, lane=lane)
    key = f"{keys.namespace}:order"
    futures = []
    for i in range(200):
        futures.append(pipe.rpush(key, i))  # fired without waiting, spread over many loop turns
        if i % 7 == 0:
            await anyio.lowlevel.checkpoint()
    assert await asyncio.gather(*futures) == list(range(1, 201))
    assert [int(v) for v in await redis.lrange(key, 0, -1)] == list(range(200))
    assert pipe.pipelines > 1  # it did span several pipelines


async def test_a_caller_cancelled_while_queued_never_sends_its_command(
    redis: Any, keys: Keys, lane: bool
) -> None:
    pipe = AutoPipeline(redis, lane=lane)
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


async def test_a_caller_cancelled_in_flight_leaves_the_others_their_replies(
    redis: Any, keys: Keys, lane: bool
) -> None:
    pipe = AutoPipeline(redis, lane=lane)
    n = f"{keys.namespace}:n"
    got: dict[str, Any] = {}
    victim = anyio.CancelScope()

    async def call(name: str, *command: Any) -> None:
        got[name] = await pipe.execute_command(*command)

    async def cancelled_caller() -> None:
        with victim:
            await call("victim", "INCR", n)

    async with anyio.create_task_group() as tg:
        # Tasks start in order. On a lane the blocker goes out alone (an idle lane writes at once) and the
        # other two share the next pipeline, the victim's INCR behind the hold; on redis-py's path all three
        # share one. Either way the INCR is in flight, and its reply cannot come, before the cancel.
        tg.start_soon(call, "blocker", "WAIT", 1, 200)
        tg.start_soon(call, "other", *HOLD)
        tg.start_soon(cancelled_caller)
        await until(lambda: pipe.in_flight and pipe.queued == 0 and pipe.commands == 3, what="all in flight")
        victim.cancel()
    assert "victim" not in got and got["other"] == 0
    assert await redis.get(n) == b"1"  # its command had left: it ran, as a direct call's would
    assert await pipe.incr(n) == 2  # and the pipeline carries on


async def test_a_caller_being_cancelled_sends_nothing(redis: Any, keys: Keys, lane: bool) -> None:
    """Code that swallowed its cancellation (as a2a-sdk's request handler may, returning the task as it
    stands) and then writes, say, its answer: the write must not leave, though an idle lane sends at once.
    The consumer stopping a dying replica's handler relies on this (test_binding_promises)."""
    pipe = AutoPipeline(redis, lane=lane)
    n = f"{keys.namespace}:n"
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.sleep(5)
        except anyio.get_cancelled_exc_class():
            pass  # swallowed; the scope is still cancelled, so the next await raises again
        await pipe.incr(n)
    assert scope.cancelled_caught
    assert await redis.get(n) is None  # never sent
    assert await pipe.incr(n) == 1


async def test_callers_that_meet_noscript_together_load_the_script_once(
    redis_url: str, keys: Keys, lane: bool
) -> None:
    """Fifty callers of a script Redis does not know (after a restart, say) share one pipeline, all get
    NOSCRIPT, and one SCRIPT LOAD serves them all: not fifty, each on a pool connection of its own (a pool
    of three would run out)."""
    client = connect(redis_url, max_connections=3)
    try:
        pipe = AutoPipeline(client, lane=lane)
        script = pipe.register_script(f"return '{keys.namespace}' .. ARGV[1]")  # a script no test loaded
        await pipe.ping()
        before = pipe.commands
        results = await asyncio.gather(*(script(keys=[], args=[i]) for i in range(50)))
        assert results == [f"{keys.namespace}{i}".encode() for i in range(50)]
        if pipe._usable_lane:  # the load went through the lane: 50 EVALSHA, 1 SCRIPT LOAD, 50 EVALSHA again
            assert pipe.commands - before == 101
    finally:
        await client.aclose()


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
