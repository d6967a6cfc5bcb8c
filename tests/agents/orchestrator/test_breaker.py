"""The circuit breaker lives in Redis: every replica (here: a second ``Breakers`` on its own client)
sees the same state, and every transition is one atomic script."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from podium.agents.orchestrator.state.breakers import Breakers, breaker_states
from podium.bus.connection import connect
from podium.bus.keys import Keys

pytestmark = pytest.mark.anyio


async def test_opens_after_the_threshold_half_opens_after_the_cooldown_and_closes_on_success(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    one = Breakers(redis, keys, threshold=3, cooldown_s=0.3)
    other_client = connect(redis_url)
    other = Breakers(other_client, keys, threshold=3, cooldown_s=0.3)  # another orchestrator replica
    try:
        assert await one.allow("researcher") == (True, "closed")
        for expected in ("closed", "closed", "open"):
            assert (await one.failure("researcher")).after == expected
        assert await other.allow("researcher") == (False, "open")  # the other replica sees it open
        with anyio.fail_after(5):
            while not (await other.allow("researcher"))[0]:  # noqa: ASYNC110 - polling Redis state
                await anyio.sleep(0.05)
        assert (await one.allow("researcher")) == (False, "half-open")  # only one probe at a time
        transition = await other.success("researcher")
        assert (transition.before, transition.after) == ("half-open", "closed")
        assert await one.allow("researcher") == (True, "closed")
        states = await breaker_states(redis, keys, ["researcher", "analyst"])
        assert states["researcher"]["state"] == "closed" and states["analyst"]["state"] == "closed"
    finally:
        await other_client.aclose()


async def test_a_failed_probe_opens_it_again_and_a_success_resets_the_count(redis: Any, keys: Keys) -> None:
    breakers = Breakers(redis, keys, threshold=2, cooldown_s=0.1)
    await breakers.failure("a")
    await breakers.success("a")
    assert (await breakers.failure("a")).after == "closed"  # the count started again
    assert (await breakers.failure("a")).after == "open"
    with anyio.fail_after(5):
        while not (await breakers.allow("a"))[0]:  # noqa: ASYNC110 - polling Redis state
            await anyio.sleep(0.05)
    assert (await breakers.failure("a")).after == "open"
    states = await breaker_states(redis, keys, ["a"])
    assert states["a"]["state"] == "open" and states["a"]["openedAt"]
