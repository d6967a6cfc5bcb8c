"""Bus fixtures: one ``bus`` fixture parametrized over the real Redis and the embedded bus, so the same
contract tests run on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from podium.bus.connection import connect
from podium.bus.keys import Keys
from podium.bus.streams import StreamBus


@pytest.fixture(params=["redis", "embedded"])
def bus_url(request: pytest.FixtureRequest) -> str | None:
    """The backend under test: a real redis-server URL, or None for the embedded bus."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return None


@pytest.fixture
async def bus(bus_url: str | None, keys: Keys) -> AsyncIterator[StreamBus]:
    client = connect(bus_url)
    yield StreamBus(client, keys)
    await client.aclose()
