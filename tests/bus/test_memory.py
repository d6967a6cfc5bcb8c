"""A Redis that keeps what it is given: out of memory with ``noeviction``, publishers are refused as
overloaded, accepted work waits and is all handled once memory frees; an evicting policy is refused, and
a policy that cannot be read (ACLs) is a warning."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from redis.exceptions import OutOfMemoryError

from podium.bus import Consumer, Delivery, Envelope, Keys, StreamBus
from podium.bus.backpressure import AgentOverloaded, Inboxes, retry_after, set_limits
from podium.bus.connection import connect
from podium.bus.eviction import EvictionPolicyError, check_eviction
from tests.bus.helpers import running, until
from tests.support import REDIS_SERVER, RedisServer, no_redis_server

pytestmark = [pytest.mark.anyio, pytest.mark.real_redis]

AGENT = "worker"


def server(*args: str) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        no_redis_server()
    srv = RedisServer(extra_args=args).start()
    yield srv
    srv.close()


@pytest.fixture
def small_redis() -> Iterator[RedisServer]:
    """A redis-server with 16 MB of memory that refuses writes rather than evict."""
    yield from server("--maxmemory", "16mb", "--maxmemory-policy", "noeviction")


@pytest.fixture
def evicting_redis() -> Iterator[RedisServer]:
    yield from server("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")


async def fill(client: object, key: str) -> None:
    """Append to ``key`` until Redis refuses: then it is out of memory, give or take a few hundred bytes."""
    for chunk in (256_000, 16_000, 256):
        try:
            while True:
                await client.append(key, b"x" * chunk)  # type: ignore[attr-defined]
        except OutOfMemoryError:
            continue


async def test_out_of_memory_refuses_publishers_loses_nothing_and_recovers(small_redis: RedisServer) -> None:
    keys = Keys("oom")
    client = connect(small_redis.url)
    bus, inboxes = StreamBus(client, keys), Inboxes(client)
    assert (await check_eviction(client, allow=False, who="test")).policy == "noeviction"
    await set_limits(client, keys, AGENT, capacity=0, retry_after_s=2)
    accepted = {
        await inboxes.publish(keys, AGENT, Envelope(method="SendMessage", payload={"n": i}))
        for i in range(40)
    }
    done: set[str] = set()

    async def handler(env: Envelope, delivery: Delivery) -> None:
        await client.set(f"oom:done:{delivery.entry_id}", env.id)  # a write: refused while out of memory
        done.add(delivery.entry_id)

    await bus.ensure_group(keys.inbox(AGENT), AGENT, start_id="0")  # the agent ran before
    await fill(client, "oom:ballast")
    refused = 0
    for i in range(20):  # Redis may fit a small entry or two in what the ballast left
        try:
            await inboxes.publish(keys, AGENT, Envelope(method="SendMessage", payload={"late": i}))
        except AgentOverloaded as exc:
            assert "Redis is out of memory" in str(exc) and retry_after(exc) == 1.0
            refused += 1
    assert refused >= 18
    consumer = Consumer(
        bus, AGENT, handler, consumer="c1", max_deliveries=2, retry_backoff_ms=10, claim_idle_ms=5000
    )
    async with running(consumer):
        # Each accepted request fails for lack of memory more times than max_deliveries allows...
        await until(lambda: consumer.failed >= 3 * len(accepted), within=60, what="handlers to hit the OOM")
        assert not done and consumer.dead_lettered == 0
        await client.delete("oom:ballast")  # memory frees
        # ... and every one is still handled once Redis has room again: none was dead-lettered.
        await until(lambda: accepted <= done, within=60, what="every accepted request to be handled")
        assert consumer.dead_lettered == 0 and await client.xlen(keys.dlq(AGENT)) == 0
        after = await inboxes.publish(
            keys, AGENT, Envelope(method="SendMessage")
        )  # publishers accepted again
        await until(lambda: after in done, what="new work to be handled after recovery")
    await client.aclose()


async def test_an_evicting_redis_is_refused_unless_allowed(
    evicting_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = connect(evicting_redis.url)
    try:
        with pytest.raises(EvictionPolicyError) as refused:
            await check_eviction(client, allow=False, who="test")
        message = str(refused.value)
        assert "maxmemory-policy allkeys-lru" in message and "--allow-eviction" in message
        with caplog.at_level(logging.WARNING, logger="podium.bus.eviction"):
            found = await check_eviction(client, allow=True, who="test")
        assert found.policy == "allkeys-lru" and found.maxmemory == 64 * 1024 * 1024
        assert "evicts keys" in caplog.text
    finally:
        await client.aclose()


async def test_a_policy_hidden_by_acls_is_read_from_info_or_warned_about(
    evicting_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    admin = connect(evicting_redis.url)
    await admin.acl_setuser(
        "noconfig", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-config"]
    )
    await admin.acl_setuser(
        "blind", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-config", "-info"]
    )
    base = evicting_redis.url.replace("redis://", "redis://{}:pw@")
    noconfig, blind = connect(base.format("noconfig")), connect(base.format("blind"))
    try:
        with pytest.raises(EvictionPolicyError):  # CONFIG GET refused: INFO memory still tells
            await check_eviction(noconfig, allow=False, who="test")
        with caplog.at_level(logging.WARNING, logger="podium.bus.eviction"):
            found = await check_eviction(blind, allow=False, who="test")  # cannot tell: warn, go on
        assert found.policy is None and "no permissions" in (found.error or "")
        assert "cannot check Redis's maxmemory-policy" in caplog.text
    finally:
        for c in (admin, noconfig, blind):
            await c.aclose()
