"""StreamBus contract: publish, read, groups, trimming and the DLQ, on the real Redis and the embedded bus."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from redis.exceptions import ResponseError

from podium.bus import Envelope, EnvelopeError, Keys, StreamBus
from podium.bus.connection import connect
from podium.bus.streams import dead_letter_fields

pytestmark = pytest.mark.anyio


async def test_publish_then_read_in_order(bus: StreamBus) -> None:
    stream = bus.keys.reply("c1")
    envs = [Envelope(method="SendMessage", payload={"n": i}) for i in range(5)]
    first = await bus.publish(stream, envs[0])
    rest = await bus.publish_many(stream, envs[1:])
    got = await bus.read(stream, "0", count=10, block_ms=None)
    assert [i for i, _ in got] == [first, *rest]
    assert [e for _, e in got] == envs
    assert await bus.read(stream, rest[-1], block_ms=None) == []


async def test_read_waits_for_a_publish(bus: StreamBus) -> None:
    stream = bus.keys.reply("c2")
    await bus.publish(stream, Envelope(method="old"))
    after = await bus.last_id(stream)
    env = Envelope(method="SendMessage")
    got: list = []

    async def reader() -> None:
        got.extend(await bus.read(stream, after, block_ms=10_000))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            # Let the reader start; it may still read before or after the publish.
            await anyio.lowlevel.checkpoint()
            await bus.publish(stream, env)
    assert [e for _, e in got] == [env]


async def test_read_times_out_empty(bus: StreamBus) -> None:
    assert await bus.read(bus.keys.reply("quiet"), "$", block_ms=50) == []


async def test_read_reports_malformed_entries(bus: StreamBus) -> None:
    stream = bus.keys.reply("c3")
    await bus.redis.xadd(stream, {"e": "not json"})
    await bus.redis.xadd(stream, {"other": "x"})
    (_, bad_json), (_, missing) = await bus.read(stream, "0", block_ms=None)
    assert isinstance(bad_json, EnvelopeError)
    assert isinstance(missing, EnvelopeError) and "no field" in str(missing)


async def test_ensure_group_is_idempotent_and_ignores_only_busygroup(bus: StreamBus) -> None:
    stream = bus.keys.inbox("g1")
    await bus.ensure_group(stream, "g1")
    await bus.ensure_group(stream, "g1")
    groups = await bus.redis.xinfo_groups(stream)
    assert len(groups) == 1
    not_a_stream = f"{bus.keys.namespace}:plain"
    await bus.redis.set(not_a_stream, "x")
    with pytest.raises(ResponseError):
        await bus.ensure_group(not_a_stream, "g1")


async def test_publish_trims_and_trim_reports_removed(bus: StreamBus) -> None:
    stream = bus.keys.reply("c4")
    await bus.publish_many(stream, [Envelope() for _ in range(30)])
    assert await bus.trim(stream, 10) == 20
    assert await bus.redis.xlen(stream) == 10
    capped = StreamBus(bus.redis, bus.keys, maxlen=None)
    await capped.publish(stream, Envelope(), maxlen=0)
    assert await bus.redis.xlen(stream) <= 11  # approximate trimming may keep a few


async def test_dlq_list_and_replay_selected(bus: StreamBus) -> None:
    agent = "dl"
    envs = [Envelope(method="SendMessage", attempt=4, payload={"n": i}) for i in range(3)]
    ids = [
        await bus.redis.xadd(
            bus.keys.dlq(agent), dead_letter_fields(e.encode(), "Boom: x", 5, "c-1", f"1-{i}")
        )
        for i, e in enumerate(envs)
    ]
    await bus.redis.xadd(bus.keys.dlq(agent), dead_letter_fields("{broken", "malformed", 1, "c-1", "1-9"))
    letters = await bus.dlq_list(agent)
    assert [(d.error, d.attempts, d.consumer) for d in letters[:3]] == [("Boom: x", 5, "c-1")] * 3
    assert letters[0].decode() == envs[0] and letters[3].decode() is None
    assert await bus.dlq_replay(agent, [letters[1].id]) == 1
    assert await bus.dlq_replay(agent) == 2  # the malformed one stays
    inbox = await bus.read(bus.keys.inbox(agent), "0", block_ms=None)
    assert [e.payload["n"] for _, e in inbox if isinstance(e, Envelope)] == [1, 0, 2]
    assert all(isinstance(e, Envelope) and e.attempt == 0 for _, e in inbox)
    assert [d.envelope for d in await bus.dlq_list(agent)] == ["{broken"]
    assert len(ids) == 3


async def test_embedded_buses_share_one_server_and_wake_each_other(keys: Keys) -> None:
    a, b = connect(None), connect(None)
    try:
        bus_a, bus_b = StreamBus(a, keys), StreamBus(b, keys)
        stream = keys.reply("shared")
        got: list = []
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:

                async def reader() -> None:
                    got.extend(await bus_a.read(stream, "0", block_ms=0))  # 0: wait forever

                tg.start_soon(reader)
                await bus_b.publish(stream, Envelope(method="X"))
        assert [e.method for _, e in got if isinstance(e, Envelope)] == ["X"]
    finally:
        await a.aclose()
        await b.aclose()
