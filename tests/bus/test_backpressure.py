"""Backpressure: a full inbox refuses new work atomically, on the real Redis and the embedded bus, and
``retry_after`` recognises the overloaded error in every shape it arrives in."""

from __future__ import annotations

import anyio
import httpx
import pytest
from a2a.client.errors import A2AClientError, A2AClientTimeoutError
from a2a.utils.errors import InternalError

from podium.bus import Envelope, Keys, StreamBus
from podium.bus.backpressure import (
    OVERLOADED_CODE,
    AgentOverloaded,
    Inboxes,
    jsonrpc_error,
    rest_error,
    retry_after,
    set_limits,
)
from podium.bus.connection import connect
from podium.bus.streams import text

pytestmark = pytest.mark.anyio


def work(n: int = 0) -> Envelope:
    return Envelope(method="SendMessage", payload={"n": n})


async def test_a_full_inbox_refuses_new_work_until_it_drains(bus: StreamBus) -> None:
    keys, agent = bus.keys, "busy"
    inbox = keys.inbox(agent)
    inboxes = Inboxes(bus.redis)
    await set_limits(bus.redis, keys, agent, capacity=3, retry_after_s=2.5)
    accepted = [await inboxes.publish(keys, agent, work(i)) for i in range(3)]
    with pytest.raises(AgentOverloaded) as refused:
        await inboxes.publish(keys, agent, work(3))
    exc = refused.value
    assert (exc.agent, exc.waiting, exc.capacity, exc.retry_after_s) == (agent, 3, 3, 2.5)
    assert str(exc) == "agent busy is overloaded: 3 requests waiting (capacity 3); retry after 2.5s"
    assert retry_after(exc) == 2.5
    assert isinstance(exc, A2AClientError)  # caught like any other A2A client error
    assert await bus.redis.xlen(inbox) == 3  # the refused request was not queued
    await inboxes.publish(keys, agent, Envelope(method="GetTask"), check=False)  # not new work: accepted
    await bus.ensure_group(inbox, agent, start_id="0")
    await bus.redis.xreadgroup(agent, "r1", {inbox: ">"}, count=2)  # delivered, not acknowledged yet
    with pytest.raises(AgentOverloaded):  # pending entries still count
        await inboxes.publish(keys, agent, work(4))
    stats = (await inboxes.stats(keys, [agent]))[agent]
    assert (stats.depth, stats.pending, stats.capacity, stats.waiting) == (2, 2, 3, 4)
    assert stats.oldest_pending_age_s is not None and stats.oldest_pending_age_s >= 0
    await bus.redis.xack(inbox, agent, *accepted[:2])
    await bus.redis.xreadgroup(agent, "r1", {inbox: ">"})
    await bus.redis.xack(inbox, agent, accepted[2])  # one still pending (the GetTask): 1 of 3 waiting
    entry = await inboxes.publish(keys, agent, work(5))
    assert text(entry) in [text(i) for i, _ in await bus.redis.xrange(inbox)]
    stats = (await inboxes.stats(keys, [agent]))[agent]
    assert (stats.depth, stats.pending) == (1, 1)


async def test_capacity_defaults_apply_until_the_agent_records_its_own(bus: StreamBus) -> None:
    keys, agent = bus.keys, "unstarted"
    inboxes = Inboxes(bus.redis, default_capacity=2, default_retry_after_s=0.5)
    await inboxes.publish(keys, agent, work())
    await inboxes.publish(keys, agent, work())
    with pytest.raises(AgentOverloaded) as refused:  # no group yet: every entry waits
        await inboxes.publish(keys, agent, work())
    assert refused.value.retry_after_s == 0.5
    await set_limits(bus.redis, keys, agent, capacity=0, retry_after_s=1)  # 0: unlimited
    for i in range(5):
        await inboxes.publish(keys, agent, work(i))
    stats = (await inboxes.stats(keys, [agent]))[agent]
    assert (stats.depth, stats.pending, stats.capacity, stats.oldest_pending_age_s) == (7, 0, 0, None)
    with pytest.raises(ValueError):
        await set_limits(bus.redis, keys, agent, capacity=-1, retry_after_s=1)


@pytest.mark.real_redis
async def test_the_cap_holds_however_many_publishers_race(redis_url: str, keys: Keys) -> None:
    agent = "raced"
    clients = [connect(redis_url) for _ in range(4)]
    try:
        await set_limits(clients[0], keys, agent, capacity=10, retry_after_s=1)
        outcomes: list[str] = []

        inboxes = [Inboxes(client) for client in clients]

        async def publish(i: int) -> None:
            try:
                await inboxes[i % len(inboxes)].publish(keys, agent, work(i))
                outcomes.append("accepted")
            except AgentOverloaded:
                outcomes.append("refused")

        async with anyio.create_task_group() as tg:  # 60 publishes in flight at once, over 4 connections
            for i in range(60):
                tg.start_soon(publish, i)
        assert outcomes.count("accepted") == 10 and outcomes.count("refused") == 50
        assert await clients[0].xlen(keys.inbox(agent)) == 10
    finally:
        for client in clients:
            await client.aclose()


def test_retry_after_recognises_the_error_over_every_transport() -> None:
    exc = AgentOverloaded("echo", waiting=7, capacity=5, retry_after_s=3)
    # JSON-RPC: the a2a-sdk client keeps only the code and message of a code it does not know.
    body = jsonrpc_error(1, exc)["error"]
    assert body["code"] == OVERLOADED_CODE == -32050
    assert retry_after(A2AClientError(f"JSON-RPC Error {body['code']}: {body['message']}")) == 3
    # HTTP+JSON: the client raises A2AClientError from the 503 it got.
    request = httpx.Request("POST", "http://agent/message:send")
    response = httpx.Response(503, json=rest_error(exc), headers={"Retry-After": "3"}, request=request)
    status = httpx.HTTPStatusError("503", request=request, response=response)
    try:
        try:
            raise status
        except httpx.HTTPStatusError as cause:
            raise A2AClientError("HTTP Error 503: Service Unavailable") from cause
    except A2AClientError as wrapped:
        assert retry_after(wrapped) == 3
    # An A2A error whose data carries the reason (e.g. re-raised by an intermediate agent).
    assert retry_after(InternalError(message="x", data={"reason": "AGENT_OVERLOADED", "retryAfterS": 4})) == 4
    # Anything else is not overload.
    other = httpx.Response(503, json={"error": {"code": 503, "message": "down"}}, request=request)
    assert retry_after(httpx.HTTPStatusError("503", request=request, response=other)) is None
    assert retry_after(A2AClientError("JSON-RPC Error -32603: Internal error")) is None
    assert retry_after(A2AClientTimeoutError("slow")) is None
    assert retry_after(ValueError("retry after 3s")) is None
