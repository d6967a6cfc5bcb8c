"""The registry's HTTP API through a real uvicorn server: discovery, outside agents by URL, and every bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest
from a2a.client import A2ACardResolver

from podium.registry.cards import card_to_dict
from podium.registry.http import Settings, create_app
from podium.registry.signing import CardSigner, TrustedKeys, generate_keypair
from podium.registry.store import Registry
from tests.registry.helpers import podium_card, snapshot
from tests.registry.servers import PUBLIC_URL, a2a_agent, bad_upstream_app, hello_card, serve
from tests.support import free_port

pytestmark = pytest.mark.anyio
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Env:
    url: str  # the registry
    http: httpx.AsyncClient
    registry: Registry
    agent: str  # a real a2a-sdk agent
    bad: str  # misbehaving upstreams


@pytest.fixture
async def env(redis, keys) -> AsyncIterator[Env]:
    release = anyio.Event()
    registry = Registry(redis, keys)
    app = create_app(
        registry, Settings(token=TOKEN, allow_private_urls=True, fetch_timeout=3.0)
    )  # a loaded machine still streams 640 KB in it
    async with (
        a2a_agent() as agent,
        serve(bad_upstream_app(release, agent)) as bad,
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        try:
            yield Env(url, http, registry, agent, bad)
        finally:
            release.set()


def assert_error(resp: httpx.Response, status: int, code: str, *words: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code, err
    for word in words:
        assert word in err["message"], err
    return err


async def test_health_list_and_discovery(env: Env) -> None:
    assert (await env.http.get("/healthz")).json()["status"] == "ok"
    assert (await env.http.get("/agents")).json() == {"agents": []}
    for name in ("analyst", "writer", "reviewer"):
        await env.registry.register(podium_card(name), "i1", ttl=30)
    await env.registry.register(podium_card("echo"), "i1", ttl=30)
    await env.registry.deregister("echo", "i1")

    agents = (await env.http.get("/agents")).json()["agents"]
    assert [a["name"] for a in agents] == ["analyst", "reviewer", "writer"]
    assert agents[0]["alive"] == 1 and agents[0]["lastHeartbeat"] and agents[0]["signed"] is False
    everything = (await env.http.get("/agents", params={"all": "1"})).json()["agents"]
    assert [(a["name"], a["alive"]) for a in everything][1] == ("echo", 0)

    found = (await env.http.get("/agents", params={"q": "monthly loan payment"})).json()["agents"]
    assert found[0]["name"] == "analyst" and found[0]["match"]["skill"] == "calculate"
    assert [
        a["name"] for a in (await env.http.get("/agents", params={"skill": "revise"})).json()["agents"]
    ] == ["writer"]
    assert [
        a["name"] for a in (await env.http.get("/agents", params={"tag": "rubric"})).json()["agents"]
    ] == ["reviewer"]
    assert_error(await env.http.get("/agents", params={"limit": "x"}), 400, "bad_request", "limit")


async def test_get_agent_is_the_card_an_a2a_client_expects(env: Env) -> None:
    card = podium_card("writer")
    await env.registry.register(card, "i1", ttl=30)
    resp = await env.http.get("/agents/writer")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.json() == card_to_dict(card)
    resolved = await A2ACardResolver(env.http, env.url, agent_card_path="/agents/writer").get_agent_card()
    assert resolved == card

    assert_error(await env.http.get("/agents/nobody"), 404, "not_found", "'nobody'")
    await env.registry.deregister("writer", "i1")
    assert_error(await env.http.get("/agents/writer"), 404, "not_found", "no instance is alive")


async def test_register_a_real_a2a_agent_by_url_and_delete_it(env: Env) -> None:
    resp = await env.http.post("/agents", json={"url": env.agent}, headers=AUTH)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["name"], body["static"], body["url"]) == (
        "hello-agent",
        True,
        env.agent + "/.well-known/agent-card.json",
    )
    card = await A2ACardResolver(env.http, env.url, agent_card_path="/agents/hello-agent").get_agent_card()
    assert card == hello_card(env.agent)
    found = (await env.http.get("/agents", params={"q": "greet someone"})).json()["agents"]
    assert [a["name"] for a in found] == ["hello-agent"]

    # Under a chosen name, and through a redirect to the same card.
    moved = await env.http.post("/agents", json={"url": env.bad + "/moved", "name": "hello2"}, headers=AUTH)
    assert moved.status_code == 201, moved.text

    assert (await env.http.delete("/agents/hello-agent", headers=AUTH)).json() == {"removed": "hello-agent"}
    assert_error(await env.http.delete("/agents/hello-agent", headers=AUTH), 404, "not_found")
    assert [a["name"] for a in (await env.http.get("/agents")).json()["agents"]] == ["hello2"]


async def test_post_a_card_directly(env: Env) -> None:
    card = card_to_dict(hello_card("https://hello.example"))
    resp = await env.http.post("/agents", json={"card": card}, headers=AUTH)
    assert resp.status_code == 201 and resp.json()["name"] == "hello-agent" and resp.json()["url"] is None


@pytest.mark.parametrize(
    ("path", "status", "code", "words"),
    [
        ("/slow", 504, "upstream_timeout", ["within 3s"]),
        ("/huge", 413, "too_large", ["cut off"]),
        ("/declared", 413, "too_large", ["307200 bytes"]),
        ("/html", 422, "not_an_agent_card", ["text/html"]),
        ("/notjson", 422, "not_an_agent_card", ["not JSON"]),
        ("/notcard", 422, "not_an_agent_card", ["name: missing"]),
        ("/noskills", 422, "not_an_agent_card", ["skills: at least one skill"]),
        ("/missing", 502, "upstream_unreachable", ["HTTP 404"]),
    ],
)
async def test_bad_upstreams_are_refused_and_change_nothing(
    env: Env, redis, keys, path: str, status: int, code: str, words: list[str]
) -> None:
    await env.registry.register(podium_card("echo"), "i1", ttl=30)
    before = await snapshot(redis, keys.namespace)
    resp = await env.http.post("/agents", json={"url": env.bad + path}, headers=AUTH)
    assert_error(resp, status, code, *words)
    assert await snapshot(redis, keys.namespace) == before


async def test_unreachable_upstream(env: Env) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    assert_error(
        await env.http.post("/agents", json={"url": closed}, headers=AUTH), 502, "upstream_unreachable"
    )
    assert_error(
        await env.http.post("/agents", json={"url": "ftp://x/"}, headers=AUTH), 400, "url_not_allowed"
    )


async def test_bad_requests_and_tokens(env: Env, redis, keys) -> None:
    await env.registry.register(podium_card("echo"), "i1", ttl=30)
    before = await snapshot(redis, keys.namespace)
    body = {"url": env.agent}

    missing = await env.http.post("/agents", json=body)
    assert_error(missing, 401, "missing_token")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = await env.http.post("/agents", json=body, headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401, "invalid_token")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert TOKEN not in wrong.text
    assert_error(await env.http.delete("/agents/echo"), 401, "missing_token")

    post = env.http.post
    assert_error(await post("/agents", content=b"{nope", headers=AUTH), 400, "bad_json")
    assert_error(await post("/agents", json=[1], headers=AUTH), 400, "bad_request", "JSON object")
    assert_error(await post("/agents", json={}, headers=AUTH), 400, "bad_request")
    assert_error(await post("/agents", json={"url": 5}, headers=AUTH), 400, "bad_request", "url")
    assert_error(
        await post("/agents", json={"url": env.agent, "name": "bad name"}, headers=AUTH), 400, "invalid_card"
    )
    assert_error(
        await post("/agents", json={"url": env.agent, "name": "echo"}, headers=AUTH), 409, "name_taken"
    )
    bad_card = card_to_dict(hello_card("https://h.example"))
    bad_card["skills"][0]["id"] = ""
    assert_error(
        await post("/agents", json={"card": bad_card}, headers=AUTH),
        400,
        "invalid_card",
        "skills[0].id: missing",
    )
    assert_error(
        await post("/agents", json={"card": "{"}, headers=AUTH), 400, "invalid_card", "card: not valid JSON"
    )
    huge = json.dumps({"card": {"description": "x" * (300 * 1024)}})
    assert_error(await post("/agents", content=huge, headers=AUTH), 413, "too_large")
    assert await snapshot(redis, keys.namespace) == before


async def test_private_targets_are_refused_without_the_flag(redis, keys) -> None:
    app = create_app(Registry(redis, keys), Settings(token=TOKEN))
    async with a2a_agent() as agent, serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        for target in (
            agent,
            agent.replace("127.0.0.1", "localhost"),
            "http://10.1.2.3/",
            "http://169.254.169.254/",
        ):
            resp = await http.post("/agents", json={"url": target}, headers=AUTH)
            assert_error(resp, 400, "url_not_allowed", "--allow-private-urls")
        assert (await http.get("/agents")).json() == {"agents": []}


async def test_without_a_token_only_loopback_clients_may_write(redis, keys) -> None:
    app = create_app(Registry(redis, keys), Settings(token=None))
    card = {"card": card_to_dict(hello_card(PUBLIC_URL, provider_url=PUBLIC_URL))}
    transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as http:
        assert_error(await http.post("/agents", json=card), 403, "token_required", "PODIUM_REGISTRY_TOKEN")
        assert (await http.get("/agents")).status_code == 200
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as http:
        assert (await http.post("/agents", json=card)).status_code == 201


async def test_trusted_keys_over_http(redis, keys, tmp_path) -> None:
    pair = generate_keypair(tmp_path, "ops")
    app = create_app(
        Registry(redis, keys, trusted_keys=TrustedKeys.from_paths([tmp_path])), Settings(token=TOKEN)
    )
    transport = httpx.ASGITransport(app=app)
    card = hello_card(PUBLIC_URL, provider_url=PUBLIC_URL)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as http:
        unsigned = await http.post("/agents", json={"card": card_to_dict(card)}, headers=AUTH)
        assert_error(unsigned, 403, "unsigned_card", "trusted key")
        signed = CardSigner.from_file(pair.private).sign(card)
        tampered = card_to_dict(signed)
        tampered["version"] = "9.9.9"
        assert_error(
            await http.post("/agents", json={"card": tampered}, headers=AUTH), 403, "invalid_signature"
        )
        assert (await http.get("/agents")).json() == {"agents": []}
        ok = await http.post("/agents", json={"card": card_to_dict(signed)}, headers=AUTH)
        assert ok.status_code == 201 and ok.json()["verifiedBy"] == "ops"


async def test_the_address_actually_connected_to_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a name that resolved to a public address at check time but connects to loopback."""
    import podium.registry.fetch as fetch

    async def resolved_public(url: str, *, allow_private: bool) -> None:
        return None

    monkeypatch.setattr(fetch, "check_target", resolved_public)
    async with a2a_agent() as agent, httpx.AsyncClient() as http:
        with pytest.raises(fetch.UrlNotAllowed, match=r"connected to non-public address 127\.0\.0\.1"):
            await fetch.fetch_card(http, agent, allow_private=False)
        card, _ = await fetch.fetch_card(http, agent, allow_private=True)
        assert card.name == "Hello Agent"
