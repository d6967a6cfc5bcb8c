"""The Redis registry on a real redis-server and the embedded bus: registration, TTL heartbeats, expiry and return, discovery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest

from podium.bus.connection import connect
from podium.registry.errors import CardError, NameTaken
from podium.registry.store import Registry
from tests.registry.helpers import AGENTS, custom_card, eventually, podium_card

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["redis-server", "embedded"])
async def redis(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """The same contract on a real redis-server and on the embedded (fakeredis) bus."""
    if request.param == "embedded":
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    else:
        client = connect(request.getfixturevalue("redis_url"))
    yield client
    await client.aclose()


async def test_register_list_get_and_instances(redis, keys) -> None:
    reg = Registry(redis, keys)
    await reg.register(podium_card("echo"), "i1", ttl=30, info={"url": "http://127.0.0.1:8702/"})
    await reg.register(podium_card("echo"), "i2", ttl=30)
    [entry] = await reg.list()
    assert (entry.name, entry.alive, entry.static, entry.signed) == ("echo", 2, False, False)
    assert entry.last_heartbeat is not None
    assert (await reg.get("echo")) == podium_card("echo")
    instances = await reg.instances("echo")
    assert {i.instance for i in instances} == {"i1", "i2"}
    assert next(i for i in instances if i.instance == "i1").info == {"url": "http://127.0.0.1:8702/"}
    assert entry.to_dict()["skills"] == ["echo"] and entry.to_dict()["card"]["name"] == "echo"
    assert await reg.get("nobody") is None


async def test_card_drops_out_when_every_instance_stops_beating_and_returns(redis, keys) -> None:
    reg = Registry(redis, keys)
    await reg.register(podium_card("echo"), "a", ttl=1)
    await reg.register(podium_card("researcher"), "b", ttl=30)
    assert {e.name for e in await reg.list()} == {"echo", "researcher"}

    async def echo_gone() -> bool:
        return [e.name for e in await reg.list()] == ["researcher"]

    await eventually(echo_gone, what="echo's TTL to run out")
    assert await reg.get("echo") is None
    assert await reg.find(skill="echo") == []
    assert await reg.instances("echo") == []
    down = await reg.entry("echo", include_down=True)
    assert down is not None and down.alive == 0  # the card stays, out of discovery
    assert [e.name for e in await reg.list(include_down=True)] == ["echo", "researcher"]
    assert await redis.zcard(keys.instances("echo")) == 0  # stale instance index pruned on read

    assert await reg.heartbeat("echo", "a", ttl=30)
    assert {e.name for e in await reg.list()} == {"echo", "researcher"}
    assert (await reg.get("echo")) is not None


async def test_deregister_remove_and_vanished_card_is_re_added(redis, keys) -> None:
    reg = Registry(redis, keys)
    await reg.register(podium_card("writer"), "w1", ttl=30)
    await reg.deregister("writer", "w1")
    assert await reg.list() == []
    await reg.heartbeat("writer", "w1", ttl=30)
    assert [e.name for e in await reg.list()] == ["writer"]

    # Someone removes the card (or Redis lost it): the next heartbeat from its owner stores it again.
    other = Registry(redis, keys)
    assert await other.remove("writer")
    assert await other.list(include_down=True) == []
    assert not await other.remove("writer")
    assert await reg.heartbeat("writer", "w1", ttl=30)
    assert (await reg.get("writer")) == podium_card("writer")
    # A process that never registered the card cannot bring it back.
    await other.remove("writer")
    assert not await other.heartbeat("writer", "w1", ttl=30)


async def test_announce_keeps_beating_and_deregisters_on_exit(redis, keys) -> None:
    reg = Registry(redis, keys)
    card = podium_card("analyst")
    async with reg.announce(card, "x1", ttl=3, interval=0.2, info={"url": "http://h/"}) as instance:
        assert instance == "x1"
        [first] = await reg.instances("analyst")

        async def beaten_again() -> bool:
            now = await reg.instances("analyst")
            return bool(now) and now[0].beat > first.beat

        for _ in range(3):  # several heartbeats, each extending the TTL
            await eventually(beaten_again, what="another heartbeat")
            [first] = await reg.instances("analyst")
        assert first.info == {"url": "http://h/"} and first.started <= first.beat
        assert [e.name for e in await reg.list()] == ["analyst"]
    assert await reg.list() == []
    assert await reg.instances("analyst") == []


async def test_announce_gives_an_instance_id_and_rejects_a_bad_interval(redis, keys) -> None:
    reg = Registry(redis, keys)
    async with reg.announce(podium_card("echo")) as instance:
        assert instance and [i.instance for i in await reg.instances("echo")] == [instance]
    with pytest.raises(ValueError, match="shorter than the ttl"):
        async with reg.announce(podium_card("echo"), ttl=1, interval=1):
            pass


async def test_static_agents_are_always_listed_and_cannot_take_a_bus_name(redis, keys) -> None:
    reg = Registry(redis, keys)
    outside = custom_card(
        "Currency Agent", [{"id": "fx", "name": "FX", "description": "Converts currencies", "tags": ["fx"]}]
    )
    assert (
        await reg.register_static(outside, name="currency-agent", url="https://x.example/")
        == "currency-agent"
    )
    [entry] = await reg.list()
    assert (entry.name, entry.static, entry.alive, entry.url) == (
        "currency-agent",
        True,
        0,
        "https://x.example/",
    )
    assert (await reg.get("currency-agent")).name == "Currency Agent"

    await reg.register(podium_card("echo"), "e1", ttl=30)
    before = await reg.get("echo")
    with pytest.raises(NameTaken):
        await reg.register_static(outside, name="echo")
    assert await reg.get("echo") == before
    with pytest.raises(CardError, match="invalid agent name"):
        await reg.register_static(outside)  # "Currency Agent" is not a key; the HTTP layer slugs it


async def test_bad_instance_ids_and_cards_write_nothing(redis, keys) -> None:
    reg = Registry(redis, keys)
    with pytest.raises(CardError, match="instance id"):
        await reg.register(podium_card("echo"), "bad id", ttl=5)
    card = podium_card("echo")
    del card.skills[:]
    with pytest.raises(CardError, match="skills: at least one skill"):
        await reg.register(card, "i1", ttl=5)
    assert await redis.exists(keys.card("echo"), keys.card_index()) == 0


async def test_find_by_skill_tag_and_text(redis, keys) -> None:
    reg = Registry(redis, keys)
    for name in AGENTS:
        await reg.register(podium_card(name), "i", ttl=30)

    assert [m.entry.name for m in await reg.find(skill="revise")] == ["writer"]
    assert [m.entry.name for m in await reg.find(skill="CALCULATE")] == ["analyst"]
    assert [(m.entry.name, m.skill) for m in await reg.find(tag="Draft")] == [("writer", "write")]
    assert [m.entry.name for m in await reg.find(tag="citations")] == ["researcher", "reviewer", "writer"]
    assert len(await reg.find()) == len(AGENTS)
    assert len(await reg.find(limit=2)) == 2

    cases = {
        "monthly payment on a mortgage at 4% interest": ("analyst", "calculate"),
        "compound growth of savings over ten years": ("analyst", "calculate"),
        "what does the python language reference say about generators, with sources": (
            "researcher",
            "research",
        ),
        "grade this draft against the rubric and give a confidence": ("reviewer", "review"),
        "revise the draft using the reviewer's feedback": ("writer", "revise"),
        "turn these findings into a cited answer": ("writer", "write"),
        "plan the work and delegate it to specialists": ("orchestrator", "orchestrate"),
        "echo my input back for a plumbing test": ("echo", "echo"),
    }
    for query, expected in cases.items():
        matches = await reg.find(text=query)
        assert (matches[0].entry.name, matches[0].skill) == expected, (
            query,
            [(m.entry.name, m.score) for m in matches],
        )
        assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    assert await reg.find(text="zebra xylophone") == []
    # Filters combine with text: only skills that pass the filter can match.
    assert [m.entry.name for m in await reg.find(tag="writing", text="feedback")] == ["writer"]
    assert [m.skill for m in await reg.find(tag="writing", text="feedback")] == ["revise"]


async def test_find_only_sees_alive_agents(redis, keys) -> None:
    reg = Registry(redis, keys)
    await reg.register(podium_card("analyst"), "a", ttl=30)
    await reg.register(podium_card("reviewer"), "r", ttl=30)
    await reg.deregister("analyst", "a")
    assert [m.entry.name for m in await reg.find(text="loan payment statistics percentages")] == []
    await reg.heartbeat("analyst", "a", ttl=30)
    assert [m.entry.name for m in await reg.find(text="loan payment statistics percentages")] == ["analyst"]


async def test_registries_in_different_namespaces_do_not_meet(redis, keys) -> None:
    from podium.bus.keys import Keys

    await Registry(redis, keys).register(podium_card("echo"), "i", ttl=30)
    assert await Registry(redis, Keys(keys.namespace + "x")).list(include_down=True) == []


async def test_announce_reraises_the_body_error_unwrapped_and_deregisters(redis, keys) -> None:
    reg = Registry(redis, keys)
    with pytest.raises(ValueError, match="boom"):
        async with reg.announce(podium_card("echo"), "e1", ttl=5, interval=1):
            raise ValueError("boom")
    assert await reg.instances("echo") == []


async def test_heartbeats_survive_a_redis_restart_that_lost_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from podium.bus.keys import Keys
    from tests.support import RedisServer

    server = RedisServer().start()  # no persistence: a restart loses every key
    client = connect(server.url, socket_timeout=1, socket_connect_timeout=1)
    reg = Registry(client, Keys("restart"))
    try:
        async with reg.announce(podium_card("echo"), "e1", ttl=1, interval=0.1):
            server.kill()

            async def beat_failed() -> bool:
                return "heartbeat for echo/e1 failed" in caplog.text

            await eventually(beat_failed, what="a heartbeat to fail while Redis is down")
            server.start()

            async def back() -> bool:
                return [e.name for e in await reg.list()] == ["echo"]

            await eventually(back, what="the card to be registered again after the restart")
    finally:
        await client.aclose()
        server.close()


async def test_a_changed_card_is_read_anew_by_a_registry_that_read_it_before(redis, keys) -> None:
    """Readers keep cards they parsed (discovery reads every card on every task); a card rewritten by another
    process (a new version of the agent) must still be what the next read returns, and a broken one is skipped."""
    reader, writer = Registry(redis, keys), Registry(redis, keys)

    def calc(skill: str) -> Any:
        return custom_card("calc", [{"id": skill, "name": skill, "description": skill, "tags": ["math"]}])

    await writer.register(calc("add"), "i1", ttl=30)
    [before] = await reader.list()
    assert [s.id for s in before.card.skills] == ["add"]
    await writer.register(calc("mul"), "i1", ttl=30)
    [after] = await reader.list()
    assert [s.id for s in after.card.skills] == ["mul"]
    await redis.set(keys.card("calc"), b"{not json")
    assert await reader.list() == []
