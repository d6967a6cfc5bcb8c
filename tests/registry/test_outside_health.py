"""Outside agents' credentials and health in the registry's HTTP service: the name of the variable holding
an agent's own token is stored (never a token), a bad one is refused naming the field; the service fetches
each outside agent's card again and lists whether it answered, and forgets that when the agent is removed."""

from __future__ import annotations

import httpx
import pytest

from podium.registry.http import Settings, create_app
from podium.registry.store import Registry
from tests.registry.helpers import eventually
from tests.registry.servers import a2a_agent, serve

pytestmark = pytest.mark.anyio


async def test_token_env_and_health_of_an_outside_agent(redis, keys) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(redis, keys)
    app = create_app(registry, Settings(allow_private_urls=True, health_interval_s=0.2))
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        async with a2a_agent() as agent:
            bad = await http.post("/agents", json={"url": agent, "tokenEnv": "not a name"})
            assert bad.status_code == 400 and "tokenEnv" in bad.json()["error"]["message"]
            added = await http.post("/agents", json={"url": agent, "tokenEnv": "AGENT_TOKEN"})
            assert added.status_code == 201, added.text
            name = added.json()["name"]
            assert added.json()["tokenEnv"] == "AGENT_TOKEN" and added.json()["health"] is None
            entry = await registry.entry(name)
            assert entry is not None and entry.token_env == "AGENT_TOKEN"

            async def health() -> dict | None:
                rows = (await http.get("/agents")).json()["agents"]
                return next(r for r in rows if r["name"] == name)["health"]

            await eventually(lambda: _is(health, True), what="the agent checked and ok")
        # the agent is gone: the next check marks it down, with the reason
        await eventually(lambda: _is(health, False), what="the agent shown down")
        assert "127.0.0.1" in (await health())["error"]
        assert (await http.delete(f"/agents/{name}")).status_code == 200
        assert await redis.hget(keys.outside_health(), name) is None


async def _is(read, ok: bool) -> bool:  # type: ignore[no-untyped-def]
    found = await read()
    return found is not None and found["ok"] is ok


def test_the_check_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_OUTSIDE_CHECK_S", "2.5")
    monkeypatch.setenv("PODIUM_REGISTRY_TOKEN", "t")
    settings = Settings.from_env(allow_private_urls=True)
    assert settings.health_interval_s == 2.5 and settings.token == "t" and settings.allow_private_urls
    monkeypatch.setenv("PODIUM_OUTSIDE_CHECK_S", "soon")
    with pytest.raises(ValueError, match="PODIUM_OUTSIDE_CHECK_S: expected seconds"):
        Settings.from_env()
