"""Rules of docs/binding-redis-streams.md that no other test proves: a reader refuses an envelope of a
newer schema (or with a field it does not know) instead of guessing, and its consumer dead-letters it at
once without stopping; the binding's method table is the A2A core operations, each with the request type
of the a2a-sdk's protobuf messages. Real redis-server (the ``bus`` fixture)."""

from __future__ import annotations

import json

import pytest

from podium.bus import Consumer, Delivery, Envelope, Kind, StreamBus
from podium.bus.binding import METHODS, STREAMING
from podium.bus.errors import EnvelopeError
from tests.bus.helpers import pending_count, running, until
from tests.support import ROOT

AGENT = "spec"


@pytest.mark.anyio
async def test_an_envelope_of_a_newer_schema_is_refused_not_guessed(bus: StreamBus) -> None:
    current = Envelope(kind=Kind.REQUEST, method="GetTask", payload={"id": "t"}).encode()
    newer = json.dumps({**json.loads(current), "v": 2})
    unknown_field = json.dumps({**json.loads(current), "priority": "high"})
    with pytest.raises(EnvelopeError, match="unsupported envelope schema version 2"):
        Envelope.decode(newer)
    with pytest.raises(EnvelopeError, match="priority"):
        Envelope.decode(unknown_field)
    handled: list[str] = []

    async def handler(env: Envelope, delivery: Delivery) -> None:
        handled.append(env.method)

    inbox = bus.keys.inbox(AGENT)
    ids = [(await bus.redis.xadd(inbox, {"e": raw})).decode() for raw in (newer, unknown_field)]
    await bus.redis.xadd(inbox, {"e": current})
    consumer = Consumer(bus, AGENT, handler, consumer="c1")
    async with running(consumer):
        await until(lambda: consumer.handled == 1 and consumer.dead_lettered == 2, what="2 dead letters")
    assert handled == ["GetTask"]  # the current one still ran: the consumer did not stop
    letters = {d.entry_id: d for d in await bus.dlq_list(AGENT)}
    assert "schema version 2" in letters[ids[0]].error and "priority" in letters[ids[1]].error
    assert await pending_count(bus, AGENT) == 0


def test_the_method_table_is_the_a2a_core_operations() -> None:
    """Section 4 of the spec lists exactly these methods, with these request messages."""
    spec = (ROOT / "docs" / "binding-redis-streams.md").read_text()
    rows = dict(
        (cells[1].strip("` "), cells[2].strip("` "))
        for line in spec.splitlines()
        if line.startswith("| ") and (cells := line.split("|")[1:-1]) and cells[1].strip().startswith("`")
        and cells[1].strip("` ")[0].isupper()
    )  # fmt: skip
    assert rows == {method: kind.__name__ for method, kind in METHODS.items()}
    assert STREAMING == {"SendStreamingMessage", "SubscribeToTask"}
