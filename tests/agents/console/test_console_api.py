"""The console's API without a browser: `podium up` starts one (its URL, with a token, printed), a console
without a token is read only, and bad input is named."""

from __future__ import annotations

import re
import signal
from typing import Any

import httpx
import pytest

from podium.agents.console import Settings, create_app
from podium.bus.keys import Keys
from podium.bus.streams import StreamBus
from tests.support import Proc, wait_until

CONSOLE = re.compile(r"^\s+console\s+(http://\S+)/#token=(\S+)", re.M)


def test_podium_up_starts_a_console_and_prints_its_url_with_a_token() -> None:
    proc = Proc.podium("up", "--any-port", "--agents", "echo", env={"REDIS_URL": ""})
    try:
        wait_until(
            lambda: "Ctrl-C stops everything." in proc.output() or not proc.alive(),
            timeout=90,
            what="podium up to print its URLs",
        )
        match = CONSOLE.search(proc.output())
        assert match, proc.output()
        url, token = match.groups()
        with httpx.Client(base_url=url, timeout=10, trust_env=False) as http:
            assert http.get("/api/agents").status_code == 401
            wait_until(lambda: _names(http, token) == {"echo"}, timeout=30, what="echo in the console")
            # The live feed works on the embedded bus too: its first event lists the agents.
            bearer = {"Authorization": f"Bearer {token}"}
            with http.stream("GET", "/api/events/agents", headers=bearer) as feed:
                assert feed.headers["content-type"].startswith("text/event-stream")
                lines = feed.iter_lines()
                assert next(lines) == "event: agents"
                assert '"name":"echo"' in next(lines)
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(30) == 0, proc.output()
    finally:
        proc.close()


def _names(http: httpx.Client, token: str) -> set[str]:
    response = http.get("/api/agents", headers={"Authorization": f"Bearer {token}"})
    return {a["name"] for a in response.json()["agents"]} if response.status_code == 200 else set()


@pytest.mark.anyio
async def test_without_a_token_the_console_is_read_only(redis: Any, keys: Keys) -> None:
    bus = StreamBus(redis, keys)
    await bus.dead_letter("echo", "0-1", "not an envelope", "EnvelopeError: bad", 1, "echo-1")
    app = create_app(redis, keys, Settings(token=None))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        info = (await http.get("/api/info")).json()
        assert info == {"namespace": keys.namespace, "writable": False, "tokenRequired": False}
        letters = (await http.get("/api/dlq/echo")).json()["deadLetters"]
        assert [x["error"] for x in letters] == ["EnvelopeError: bad"] and not letters[0]["replayable"]
        for path, body in [("/api/dlq/echo/replay", {}), ("/api/ask", {"text": "What is 2+2?"})]:
            response = await http.post(path, json=body)
            assert response.status_code == 403, response.text
            assert "read only" in response.json()["error"]["message"]
        assert (await http.get("/api/dlq/bad name")).status_code == 400
        assert (await http.get("/api/tasks/nosuch")).status_code == 404
        page = await http.get("/")
        assert page.status_code == 200 and "console.js" in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert await redis.xlen(keys.dlq("echo")) == 1


@pytest.mark.anyio
async def test_bad_input_is_named(redis: Any, keys: Keys) -> None:
    app = create_app(redis, keys, Settings(token="t"))
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": "Bearer t"}
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost", headers=headers) as http:
        for body, says in [
            (b"{", "not JSON"),
            (b"[]", "JSON object"),
            (b'{"text": ""}', "text:"),
            (b'{"text": 5}', "text:"),
        ]:
            response = await http.post("/api/ask", content=body)
            assert response.status_code == 400 and says in response.json()["error"]["message"], response.text
        response = await http.post("/api/dlq/echo/replay", json={"ids": "all"})
        assert response.status_code == 400 and "ids:" in response.json()["error"]["message"]
