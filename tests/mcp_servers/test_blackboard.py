"""The blackboard server, one contract run against a real redis-server and against the embedded bus."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from mcp import Client

from podium.bus.connection import connect
from podium.bus.keys import Keys
from podium.mcp_servers.blackboard import create_server
from podium.mcp_servers.board import Limits

pytestmark = pytest.mark.anyio

SMALL = Limits(note_bytes=1000, notes=5, board_bytes=3000)


@pytest.fixture(params=["redis", "embedded"])
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """A real Redis URL, or None for the embedded in-process bus."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return None


@pytest.fixture
async def client(backend_url: str | None, namespace: str) -> AsyncIterator[Client]:
    async with Client(create_server(url=backend_url, namespace=namespace, limits=SMALL)) as c:
        yield c


@pytest.fixture
async def raw(backend_url: str | None) -> AsyncIterator[Any]:
    redis = connect(backend_url, decode_responses=True)
    yield redis
    await redis.aclose()


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    return result.content[0].text


async def test_write_read_append_list_delete(client: Client, raw: Any, namespace: str) -> None:
    written = await ok(client, "write", context_id="ctx-1", key="findings", value="one", author="researcher")
    note = written["note"]
    assert note["value"] == "one" and note["author"] == "researcher" and note["version"] == 1
    assert note["created_at"] == note["updated_at"] and note["created_at"].endswith("+00:00")
    assert written["board_notes"] == 1

    appended = await ok(client, "append", context_id="ctx-1", key="findings", value="; two", author="analyst")
    assert appended["note"]["value"] == "one; two"
    assert appended["note"]["author"] == "analyst" and appended["note"]["version"] == 2
    assert appended["note"]["created_at"] == note["created_at"]

    await ok(client, "append", context_id="ctx-1", key="todo", value="check", author="writer")
    read = await ok(client, "read", context_id="ctx-1", key="findings")
    assert read == appended["note"]

    listing = await ok(client, "list", context_id="ctx-1")
    assert listing["count"] == 2
    assert [(n["key"], n["author"], n["chars"]) for n in listing["notes"]] == [
        ("findings", "analyst", 8),
        ("todo", "writer", 5),
    ]
    assert (await ok(client, "list", context_id="ctx-2"))["count"] == 0

    stored = await raw.hgetall(Keys(namespace).blackboard("ctx-1"))
    assert set(stored) == {"findings", "todo"}
    assert json.loads(stored["findings"])["value"] == "one; two"
    assert await raw.ttl(Keys(namespace).blackboard("ctx-1")) > 0

    assert (await ok(client, "delete", context_id="ctx-1", key="todo")) == {"key": "todo", "deleted": True}
    assert (await ok(client, "delete", context_id="ctx-1", key="todo")) == {"key": "todo", "deleted": False}
    assert "no note 'todo'" in await refused(client, "read", context_id="ctx-1", key="todo")


async def test_a_note_over_its_limit_is_refused_and_the_board_keeps_what_it_had(client: Client) -> None:
    await ok(client, "write", context_id="c", key="n", value="x" * 900, author="a")
    message = await refused(client, "append", context_id="c", key="n", value="y" * 200, author="a")
    assert "1100 bytes; the limit is 1000" in message and "unchanged" in message
    assert "limit is 1000" in await refused(
        client, "write", context_id="c", key="m", value="é" * 501, author="a"
    )
    note = await ok(client, "read", context_id="c", key="n")
    assert note["value"] == "x" * 900 and note["version"] == 1
    assert (await ok(client, "list", context_id="c"))["count"] == 1


async def test_a_board_over_its_limits_is_refused_and_keeps_what_it_had(client: Client) -> None:
    for i in range(5):
        await ok(client, "write", context_id="c", key=f"k{i}", value=str(i), author="a")
    assert "already holds 5 notes" in await refused(
        client, "write", context_id="c", key="k5", value="5", author="a"
    )
    await ok(client, "write", context_id="c", key="k0", value="replacing is fine", author="a")

    for i in range(3):
        await ok(client, "write", context_id="big", key=f"k{i}", value="z" * 850, author="a")
    message = await refused(client, "write", context_id="big", key="k3", value="z" * 850, author="a")
    assert "limit is 3000" in message
    listing = await ok(client, "list", context_id="big")
    assert [n["key"] for n in listing["notes"]] == ["k0", "k1", "k2"]


async def test_concurrent_appends_never_exceed_the_limit(client: Client) -> None:
    outcomes: list[bool] = []

    async def add(i: int) -> None:
        result = await client.call_tool(
            "append", {"context_id": "race", "key": "log", "value": "x" * 30, "author": f"w{i}"}
        )
        outcomes.append(not result.is_error)

    async with anyio.create_task_group() as tg:
        for i in range(60):
            tg.start_soon(add, i)
    note = await ok(client, "read", context_id="race", key="log")
    assert outcomes.count(True) == 33 and len(note["value"]) == 990
    assert note["version"] == 33


@pytest.mark.parametrize(
    ("tool", "arguments", "argument"),
    [
        ("write", {"key": "k", "value": "v", "author": "a"}, "context_id"),
        ("write", {"context_id": "c", "key": "k", "value": 5, "author": "a"}, "value"),
        ("write", {"context_id": "c", "key": "k", "value": "v" * 20_000, "author": "a"}, "value"),
        ("write", {"context_id": "c", "key": "", "value": "v", "author": "a"}, "key"),
        ("write", {"context_id": "c", "key": "k", "value": "v", "author": ""}, "author"),
        ("write", {"context_id": "c", "key": "k", "value": "v"}, "author"),
        ("append", {"context_id": "{other}", "key": "k", "value": "v", "author": "a"}, "context_id"),
        ("read", {"context_id": "c:x", "key": "k"}, "context_id"),
        ("list", {"context_id": ["c"]}, "context_id"),
        ("delete", {"context_id": "c"}, "key"),
    ],
)
async def test_bad_arguments_are_tool_errors_naming_the_argument(
    client: Client, tool: str, arguments: dict[str, Any], argument: str
) -> None:
    assert f"\n{argument}\n" in await refused(client, tool, **arguments)


async def test_control_characters_in_keys_are_refused(client: Client) -> None:
    assert "printable" in await refused(client, "write", context_id="c", key="a\nb", value="v", author="a")
