"""Bad input against a real `podium agent echo` (with a token): each binding reports a typed error in its own
shape — a JSON-RPC error object on `POST /`, a google.rpc-style status on the HTTP+JSON routes, an A2A
error reply on the bus — with no traceback in the agent's log, and the agent healthy after. Also the card
route's cache validators."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from email.utils import formatdate
from typing import Any

import anyio
import httpx
import pytest
from a2a.utils.errors import InvalidParamsError

from podium.bus.a2a_client import BusClient
from podium.bus.binding import parse_bus_url
from podium.bus.connection import connect
from tests.agents.agent_procs import AgentProc, fetch_card, make_client, text_request

pytestmark = pytest.mark.anyio

TOKEN = uuid.uuid4().hex
HEADERS = {"A2A-Version": "1.0", "Authorization": f"Bearer {TOKEN}"}
LIMIT = 1_000_000  # agents.http.DEFAULT_MAX_BODY


@pytest.fixture(scope="module")
def agent(redis_server) -> Iterator[AgentProc]:
    proc = AgentProc(
        "echo", redis_server.url, f"t{uuid.uuid4().hex[:12]}", "guarded", env={"PODIUM_A2A_TOKEN": TOKEN}
    )
    try:
        yield proc.wait_ready()
    finally:
        proc.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def _message(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"message": {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": list(parts)}}


def _rpc(params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": params}


def rpc_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """The JSON-RPC error object of a JSON-RPC response."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["jsonrpc"] == "2.0" and "result" not in body, body
    assert body["error"]["code"] == code, body
    return dict(body["error"])


def rest_error(response: httpx.Response, status: int, grpc_status: str, reason: str) -> dict[str, Any]:
    """The google.rpc-style status of an HTTP+JSON error response, as a2a-sdk's REST routes shape it."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert "jsonrpc" not in response.json()
    assert error["code"] == status and error["status"] == grpc_status, error
    infos = [d for d in error["details"] if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"]
    assert infos and infos[0]["reason"] == reason, error
    return dict(error)


async def _chunks(total: int) -> AsyncIterator[bytes]:
    """A JSON body sent chunked (no Content-Length), ``total`` bytes of text in all."""
    yield b'{"message": {"messageId": "big", "role": "ROLE_USER", "parts": [{"text": "'
    for _ in range(total // 65536 + 1):
        yield b"x" * 65536
    yield b'"}]}}'


async def _healthy(agent: AgentProc, http: httpx.AsyncClient) -> None:
    assert (await http.get(agent.url + "/healthz")).json()["status"] == "ok"
    answer = await http.post(agent.url + "/", json=_rpc(_message({"text": "still fine"})), headers=HEADERS)
    assert answer.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert "Traceback" not in agent.proc.output()


@pytest.mark.parametrize(
    "parts",
    [[{"text": ""}], [{"text": "fine"}, {"text": ""}], [{}]],
    ids=["empty-text", "one-empty-text", "empty-part"],
)
async def test_an_empty_part_is_invalid_params_in_both_http_bindings(agent, http, parts) -> None:
    err = rpc_error(
        await http.post(agent.url + "/", json=_rpc(_message(*parts)), headers=HEADERS), 200, -32602
    )
    assert "message.parts[" in err["message"]
    err = rest_error(
        await http.post(agent.url + "/message:send", json=_message(*parts), headers=HEADERS),
        400,
        "INVALID_ARGUMENT",
        "INVALID_PARAMS",
    )
    assert "message.parts[" in err["message"]
    await _healthy(agent, http)


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON", "redis-streams"])
async def test_an_empty_text_part_raises_invalid_params_in_the_a2a_client(
    agent, redis_url: str, binding: str
) -> None:
    card = await fetch_card(agent.url)
    keys, _ = parse_bus_url(
        next(i.url for i in card.supported_interfaces if i.protocol_binding == "redis-streams")
    )
    redis = connect(redis_url)
    async with (
        BusClient(redis, keys, sender="test") as bus,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as authed,
    ):
        client = make_client(card, binding, bus=bus, streaming=False, http=authed)
        try:
            with pytest.raises(InvalidParamsError, match=r"message\.parts\[0\]\.text"), anyio.fail_after(30):
                async for _ in client.send_message(text_request("")):
                    pass
        finally:
            await client.close()
    await redis.aclose()
    assert "Traceback" not in agent.proc.output()


def _latin1(body: dict[str, Any]) -> bytes:
    """``body`` as JSON whose "café" is Latin-1 encoded, as a misconfigured client would send it."""
    return json.dumps(body).encode().replace(b"caf\\u00e9", b"caf\xe9")


async def test_a_body_that_is_not_utf8_is_a_parse_error(agent, http) -> None:
    raw = _latin1(_message({"text": "caf\u00e9"}))
    assert b"caf\xe9" in raw
    err = rpc_error(
        await http.post(
            agent.url + "/", content=_latin1(_rpc(_message({"text": "caf\u00e9"}))), headers=HEADERS
        ),
        200,
        -32700,
    )
    assert "UTF-8" in err["message"]
    err = rest_error(
        await http.post(agent.url + "/message:send", content=raw, headers=HEADERS),
        400,
        "INVALID_ARGUMENT",
        "INVALID_REQUEST",
    )
    assert "UTF-8" in err["message"]
    await _healthy(agent, http)


async def test_oversized_bodies_are_413_in_each_bindings_shape(agent, http) -> None:
    big = LIMIT + 10
    # Chunked: the size is only known while reading.
    err = rest_error(
        await http.post(agent.url + "/message:send", content=_chunks(big), headers=HEADERS),
        413,
        "INVALID_ARGUMENT",
        "INVALID_REQUEST",
    )
    assert "Payload too large" in err["message"]
    rpc_error(await http.post(agent.url + "/", content=_chunks(big), headers=HEADERS), 413, -32600)
    # Announced by Content-Length.
    body = json.dumps(_message({"text": "x" * big}))
    rest_error(
        await http.post(agent.url + "/message:send", content=body, headers=HEADERS),
        413,
        "INVALID_ARGUMENT",
        "INVALID_REQUEST",
    )
    rpc_error(
        await http.post(agent.url + "/", content=json.dumps(_rpc(json.loads(body))), headers=HEADERS),
        413,
        -32600,
    )
    # Just under the limit is served.
    fits = await http.post(
        agent.url + "/message:send", json=_message({"text": "y" * (LIMIT - 1000)}), headers=HEADERS
    )
    assert fits.status_code == 200, fits.text
    await _healthy(agent, http)


async def test_missing_token_is_401_in_each_bindings_shape(agent, http) -> None:
    no_token = {"A2A-Version": "1.0"}
    rejected = await http.post(agent.url + "/message:send", json=_message({"text": "hi"}), headers=no_token)
    rest_error(rejected, 401, "UNAUTHENTICATED", "UNAUTHENTICATED")
    assert rejected.headers["www-authenticate"].startswith("Bearer")
    rest_error(
        await http.get(agent.url + "/tasks/some-task", headers=no_token),
        401,
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
    )
    rejected = await http.post(agent.url + "/", json=_rpc(_message({"text": "hi"})), headers=no_token)
    assert rpc_error(rejected, 401, -32600)["data"][0]["reason"] == "UNAUTHENTICATED"
    assert rejected.headers["www-authenticate"].startswith("Bearer")
    # The card and health stay public.
    assert (await http.get(agent.url + "/.well-known/agent-card.json")).status_code == 200
    await _healthy(agent, http)


async def test_the_card_carries_cache_validators(agent, http) -> None:
    url = agent.url + "/.well-known/agent-card.json"
    first = await http.get(url)
    assert first.status_code == 200 and first.json()["name"] == "echo"
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert "max-age=" in first.headers["cache-control"]
    revalidated = await http.get(url, headers={"If-None-Match": etag})
    assert revalidated.status_code == 304 and revalidated.headers["etag"] == etag and not revalidated.content
    assert (await http.get(url, headers={"If-Modified-Since": modified})).status_code == 304
    assert (await http.get(url, headers={"If-Modified-Since": formatdate(0, usegmt=True)})).status_code == 200
    # If-None-Match decides alone when both are sent.
    both = {"If-None-Match": 'W/"other"', "If-Modified-Since": modified}
    assert (await http.get(url, headers=both)).status_code == 200
