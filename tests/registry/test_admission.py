"""Admission: every URL in an outside agent's card, posted or fetched, must name a public host.

Over the registry's real HTTP service (uvicorn). A fetched card comes from an in-process upstream at a public
address literal (the registry's outbound ``transport``), since every real server a test can start is on
loopback, which the fetch guard itself refuses.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from podium.registry.cards import card_to_dict
from podium.registry.fetch import card_urls
from podium.registry.http import Settings, create_app
from podium.registry.store import Registry
from tests.registry.helpers import podium_card, snapshot
from tests.registry.servers import PUBLIC_URL, hello_card, serve

pytestmark = pytest.mark.anyio
TOKEN = "admission-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OAUTH = "securitySchemes.oauth.oauth2SecurityScheme"


def public_card() -> dict[str, Any]:
    """A card that uses every kind of URL A2A 1.0 defines, each at a public address."""
    card = card_to_dict(hello_card(PUBLIC_URL + "/a2a", provider_url=PUBLIC_URL))
    card["supportedInterfaces"].append(
        {"url": PUBLIC_URL + "/rest", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"}
    )
    card["documentationUrl"] = PUBLIC_URL + "/docs"
    card["iconUrl"] = "https://[2606:4700::1111]/icon.png"
    card["securitySchemes"] = {
        "oauth": {
            "oauth2SecurityScheme": {
                "oauth2MetadataUrl": PUBLIC_URL + "/.well-known/oauth-authorization-server",
                "flows": {
                    "authorizationCode": {
                        "authorizationUrl": PUBLIC_URL + "/authorize",
                        "tokenUrl": PUBLIC_URL + "/token",
                        "refreshUrl": PUBLIC_URL + "/refresh",
                        "scopes": {"read": "read things"},
                    }
                },
            }
        },
        "oidc": {"openIdConnectSecurityScheme": {"openIdConnectUrl": PUBLIC_URL + "/.well-known/openid"}},
    }
    return card


def setter(path: list[Any], value: str) -> Callable[[dict[str, Any]], None]:
    def apply(card: dict[str, Any]) -> None:
        node: Any = card
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return apply


# (what is changed, the field the error must name, words in the error)
BAD: list[tuple[Callable[[dict[str, Any]], None], str, str]] = [
    (setter(["supportedInterfaces", 0, "url"], "http://169.254.169.254/"), "supportedInterfaces[0].url", ""),
    (setter(["supportedInterfaces", 1, "url"], "http://10.1.2.3:8080/"), "supportedInterfaces[1].url", ""),
    (
        setter(["supportedInterfaces", 1, "url"], "http://localhost:9000/"),
        "supportedInterfaces[1].url",
        "localhost resolves to",
    ),
    (setter(["provider", "url"], "http://192.168.0.1/"), "provider.url", ""),
    (setter(["documentationUrl"], "http://127.0.0.2/docs"), "documentationUrl", ""),
    (setter(["iconUrl"], "http://[::1]/icon.png"), "iconUrl", ""),
    (setter(["iconUrl"], "file:///etc/passwd"), "iconUrl", "names no host"),
    (
        setter(
            ["securitySchemes", "oauth", "oauth2SecurityScheme", "oauth2MetadataUrl"], "http://100.64.0.1/"
        ),
        f"{OAUTH}.oauth2MetadataUrl",
        "",
    ),
    (
        setter(
            ["securitySchemes", "oauth", "oauth2SecurityScheme", "flows", "authorizationCode", "tokenUrl"],
            "http://[fe80::1]/token",
        ),
        f"{OAUTH}.flows.authorizationCode.tokenUrl",
        "",
    ),
    (
        setter(
            ["securitySchemes", "oidc", "openIdConnectSecurityScheme", "openIdConnectUrl"],
            "http://0.0.0.0/.well-known/openid",
        ),
        "securitySchemes.oidc.openIdConnectSecurityScheme.openIdConnectUrl",
        "",
    ),
]


def bad_cards() -> list[tuple[dict[str, Any], str, str]]:
    out = []
    for change, field, words in BAD:
        card = copy.deepcopy(public_card())
        change(card)
        out.append((card, field, words))
    bus = copy.deepcopy(public_card())
    bus["supportedInterfaces"].append(
        {
            "url": "redis-streams://podium/researcher",
            "protocolBinding": "redis-streams",
            "protocolVersion": "1.0",
        }
    )
    out.append((bus, "supportedInterfaces[2].url", "own bus"))
    return out


@pytest.fixture
async def upstream_cards() -> dict[str, dict[str, Any]]:
    """What the public upstream serves, by path; tests fill it."""
    return {}


@pytest.fixture
async def strict(redis, keys, upstream_cards) -> AsyncIterator[httpx.AsyncClient]:
    """A registry that refuses private URLs, whose outbound fetches reach the public in-process upstream."""

    def upstream(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "93.184.215.14"
        card = upstream_cards.get(request.url.path)
        if card is None:
            return httpx.Response(404, json={"detail": "not here"})
        return httpx.Response(200, json=card)

    app = create_app(
        Registry(redis, keys), Settings(token=TOKEN, fetch_timeout=5), transport=httpx.MockTransport(upstream)
    )
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield http


def test_every_url_in_a_card_is_found() -> None:
    from podium.registry.cards import card_from_json

    found = dict(card_urls(card_from_json(public_card(), key_name=False)))
    assert set(found) == {
        "supportedInterfaces[0].url",
        "supportedInterfaces[1].url",
        "provider.url",
        "documentationUrl",
        "iconUrl",
        f"{OAUTH}.oauth2MetadataUrl",
        f"{OAUTH}.flows.authorizationCode.authorizationUrl",
        f"{OAUTH}.flows.authorizationCode.tokenUrl",
        f"{OAUTH}.flows.authorizationCode.refreshUrl",
        "securitySchemes.oidc.openIdConnectSecurityScheme.openIdConnectUrl",
    }


async def test_a_posted_card_with_a_private_url_anywhere_is_refused(
    strict: httpx.AsyncClient, redis, keys
) -> None:
    await Registry(redis, keys).register(podium_card("echo"), "i1", ttl=30)
    before = await snapshot(redis, keys.namespace)
    for card, field, words in bad_cards():
        resp = await strict.post("/agents", json={"card": card}, headers=AUTH)
        assert resp.status_code == 400, (field, resp.text)
        err = resp.json()["error"]
        assert err["code"] == "url_not_allowed", err
        assert err["message"].startswith(f"{field}: "), err
        assert words in err["message"], err
        assert "--allow-private-urls" in err["message"] or "names no host" in err["message"], err
    assert await snapshot(redis, keys.namespace) == before

    ok = await strict.post("/agents", json={"card": public_card()}, headers=AUTH)
    assert ok.status_code == 201, ok.text
    assert (await strict.get("/agents/hello-agent")).json()["iconUrl"] == public_card()["iconUrl"]
    inline = {**public_card(), "iconUrl": "data:image/png;base64,iVBORw0KGgo="}  # names no target at all
    ok = await strict.post("/agents", json={"card": inline, "name": "inline-icon"}, headers=AUTH)
    assert ok.status_code == 201, ok.text


async def test_a_fetched_card_with_a_private_url_is_refused(
    strict: httpx.AsyncClient, redis, keys, upstream_cards: dict[str, dict[str, Any]]
) -> None:
    well_known = "/.well-known/agent-card.json"
    for i, (card, _field, _) in enumerate(bad_cards()):
        upstream_cards[f"/bad{i}{well_known}"] = card
    upstream_cards[f"/good{well_known}"] = public_card()
    before = await snapshot(redis, keys.namespace)
    for i, (_, field, _) in enumerate(bad_cards()):
        resp = await strict.post("/agents", json={"url": f"{PUBLIC_URL}/bad{i}"}, headers=AUTH)
        assert resp.status_code == 400, (field, resp.text)
        assert resp.json()["error"]["code"] == "url_not_allowed"
        assert resp.json()["error"]["message"].startswith(f"{field}: ")
    assert await snapshot(redis, keys.namespace) == before
    ok = await strict.post("/agents", json={"url": f"{PUBLIC_URL}/good"}, headers=AUTH)
    assert ok.status_code == 201, ok.text


async def test_an_unresolvable_host_in_a_card_is_refused(strict: httpx.AsyncClient) -> None:
    card = public_card()
    card["documentationUrl"] = "https://no-such-host.invalid/docs"
    resp = await strict.post("/agents", json={"card": card}, headers=AUTH)
    assert resp.status_code == 502, resp.text
    assert resp.json()["error"]["message"].startswith(
        "documentationUrl: no-such-host.invalid: cannot resolve"
    )


async def test_private_urls_are_admitted_when_allowed(redis, keys) -> None:
    app = create_app(Registry(redis, keys), Settings(token=TOKEN, allow_private_urls=True))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        for card, field, _ in bad_cards():
            resp = await http.post("/agents", json={"card": card, "name": "inside"}, headers=AUTH)
            assert resp.status_code == 201, (field, resp.text)
        assert json.loads((await http.get("/agents/inside")).text)["name"] == "Hello Agent"
