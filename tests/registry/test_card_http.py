"""A card served by the registry carries the same cache validators as an agent's own card route: the same
ETag, Last-Modified (when it was registered), Cache-Control with a max-age, and 304s for a current copy."""

from __future__ import annotations

from email.utils import formatdate, parsedate_to_datetime

import httpx
import pytest
from a2a.server.request_handlers.response_helpers import agent_card_to_dict

from podium.registry.card_http import card_etag
from podium.registry.cards import card_to_dict
from podium.registry.http import Settings, create_app
from podium.registry.store import Registry
from tests.registry.helpers import podium_card

pytestmark = pytest.mark.anyio


async def test_registry_card_has_etag_last_modified_and_max_age(redis, keys) -> None:
    registry = Registry(redis, keys)
    card = podium_card("echo", namespace=keys.namespace)
    await registry.register(card, "echo-1", ttl=30)
    registered = (await registry.entry("echo")).registered
    app = create_app(registry, Settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry") as http:
        first = await http.get("/agents/echo")
        assert first.status_code == 200 and first.json() == card_to_dict(card)
        assert first.headers["etag"] == card_etag(card_to_dict(card))
        assert int(parsedate_to_datetime(first.headers["last-modified"]).timestamp()) == int(registered)
        assert "max-age=" in first.headers["cache-control"]
        again = await http.get("/agents/echo", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and not again.content
        since = {"If-Modified-Since": first.headers["last-modified"]}
        assert (await http.get("/agents/echo", headers=since)).status_code == 304
        older = {"If-Modified-Since": formatdate(registered - 3600, usegmt=True)}
        assert (await http.get("/agents/echo", headers=older)).status_code == 200
        assert (await http.get("/agents/echo", headers={"If-Modified-Since": "yesterday"})).status_code == 200


def test_the_etag_ignores_signatures_as_the_sdk_does() -> None:
    card = agent_card_to_dict(podium_card("echo"))
    signed = {**card, "signatures": [{"protected": "x", "signature": "y"}]}
    assert card_etag(signed) == card_etag(card)
    assert card_etag({**card, "version": "9.9.9"}) != card_etag(card)
