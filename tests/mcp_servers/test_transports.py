"""The servers as real processes: ``podium mcp NAME`` over stdio, and over Streamable HTTP behind uvicorn
with two workers and a bearer token."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
import redis
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from podium.bus.keys import Keys
from tests.support import ROOT, Proc, RedisServer, free_port, port_open, wait_until

pytestmark = pytest.mark.anyio

TOKEN = "test-token-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def stdio(*args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "podium.agents.cli", "mcp", *args], cwd=str(ROOT)
    )


def serve_http(name: str, *extra: str, env: dict[str, str] | None = None) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc.podium("mcp", name, "--transport", "http", "--port", str(port), *extra, env=env)

    def up() -> bool:
        if not proc.alive():
            raise RuntimeError(f"podium mcp {name} exited:\n{proc.output()}")
        return port_open(port)

    wait_until(up, timeout=30, what=f"podium mcp {name} on port {port}")
    return proc, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def http_client(url: str, token: str | None = TOKEN, mode: str = "auto") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as client:
            yield client


@pytest.fixture(scope="module")
def calc_http() -> Iterator[str]:
    proc, url = serve_http("calc", "--workers", "2", env={"PODIUM_MCP_TOKEN": TOKEN})
    yield url
    proc.close()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_docs_over_stdio(mode: str) -> None:
    async with Client(stdio("docs", "--transport", "stdio"), mode=mode) as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"search", "read"}
        found = await client.call_tool("search", {"query": "with statement context manager"})
        assert found.structured_content["hits"][0]["id"] == "with"
        resource = await client.read_resource("docs://yield")
        assert "yield" in resource.contents[0].text
        bad = await client.call_tool("read", {"id": "../../etc/passwd"})
        assert bad.is_error


async def test_docs_dir_option_over_stdio(tmp_path: Path) -> None:
    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "oncall.md").write_text("# On-call\n\nPage the zebra team first.\n")
    async with Client(stdio("docs", "--docs-dir", str(folder))) as client:
        found = await client.call_tool("search", {"query": "zebra team", "limit": 1})
        assert found.structured_content["hits"][0]["id"] == "handbook/oncall.md"


def test_a_bad_docs_dir_stops_the_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "mcp", "docs", "--docs-dir", str(tmp_path / "missing")],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and "is not a directory" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "mcp", "calc", "--docs-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and "only to the docs server" in done.stderr


async def test_http_requires_the_bearer_token(calc_http: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    async with httpx.AsyncClient(base_url=calc_http) as http:
        missing = await http.post("/mcp", json=body, headers=headers)
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = await http.post("/mcp", json=body, headers={**headers, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
        assert TOKEN not in wrong.text
        right = await http.post("/mcp", json=body, headers={**headers, "Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200
        assert {t["name"] for t in right.json()["result"]["tools"]} >= {"evaluate", "statistics"}
        health = await http.get("/healthz")
        assert health.json() == {"status": "ok", "server": "calc", "auth": True}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_http_calls_through_two_workers(calc_http: str, mode: str) -> None:
    async with http_client(calc_http, mode=mode) as client:
        for i in range(8):
            result = await client.call_tool("evaluate", {"expression": f"2 ** {i} + 10%"})
            assert result.structured_content["value"] == pytest.approx(2**i * 1.1)
        bad = await client.call_tool("evaluate", {"expression": "__import__('os')"})
        assert bad.is_error


async def test_http_client_with_the_wrong_token_cannot_connect(calc_http: str) -> None:
    with pytest.RaisesGroup(MCPError, flatten_subgroups=True):
        async with http_client(calc_http, token="wrong"):
            pass


async def test_blackboard_workers_share_the_board_through_redis(redis_server: RedisServer) -> None:
    namespace = f"t{uuid.uuid4().hex[:12]}"
    env = {"REDIS_URL": redis_server.url, "PODIUM_NAMESPACE": namespace}
    proc, url = serve_http("blackboard", "--workers", "2", env=env)
    try:
        async with http_client(url, token=None) as client:
            for i in range(6):
                args = {"context_id": "shared", "key": "log", "value": f"{i};", "author": f"agent{i}"}
                assert not (await client.call_tool("append", args)).is_error
            for _ in range(4):
                note = await client.call_tool("read", {"context_id": "shared", "key": "log"})
                assert note.structured_content["value"] == "0;1;2;3;4;5;"
        client = redis.Redis.from_url(redis_server.url)
        try:
            assert client.hexists(Keys(namespace).blackboard("shared"), "log")
        finally:
            client.close()
    finally:
        proc.close()
