"""The HTTP overload guard counts a request of new work until its answer's last part is sent, not until the
app returns: a caller holding its whole answer may send the next request before then."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from podium.agents.host.http import OverloadMiddleware

pytestmark = pytest.mark.anyio


async def test_a_request_stops_counting_once_its_last_body_part_is_sent() -> None:
    seen: list[int] = []
    answered = anyio.Event()
    release = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.append(guard.in_flight)  # still answering
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        seen.append(guard.in_flight)
        await send({"type": "http.response.body", "body": b"end"})
        await release.wait()  # the app's own teardown, after the caller has the whole answer

    async def check(in_flight: int) -> None:
        return None

    guard = OverloadMiddleware(app, check=check)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    scope = {"type": "http", "method": "POST", "path": "/message:send"}
    async with anyio.create_task_group() as tg:
        tg.start_soon(guard, scope, receive, send)
        with anyio.fail_after(5):
            await answered.wait()
        assert guard.in_flight == 0  # the answer is out: a next request is not refused for this one
        release.set()
    assert seen == [1, 1] and guard.in_flight == 0
