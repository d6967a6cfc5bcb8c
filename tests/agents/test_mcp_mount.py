"""Agents mounting MCP servers: config loading, MountedTools over stdio + HTTP + in-process, allowlists,
errors and timeouts as data, and reconnecting a server that died."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.agents.host.config import AgentConfigError, McpServerConfig, load_config
from podium.agents.host.mounting import MountedTools, MountError, Shared, mount_for_agent, tool_name
from podium.agents.host.tools import ToolBox
from podium.bus.keys import Keys
from tests.support import Proc, free_port, port_open, wait_until

pytestmark = pytest.mark.anyio

TOKEN = "mount-token-" + uuid.uuid4().hex
AGENTS = {
    "researcher": ["docs", "blackboard"],
    "analyst": ["calc", "blackboard"],
    "writer": ["blackboard"],
    "reviewer": ["calc", "blackboard"],
    "orchestrator": ["blackboard"],
    "echo": [],
}


def start_http(name: str, port: int, *extra: str, env: dict[str, str] | None = None) -> Proc:
    proc = Proc.podium("mcp", name, "--transport", "http", "--port", str(port), *extra, env=env)

    def up() -> bool:
        if not proc.alive():
            raise RuntimeError(f"podium mcp {name} exited:\n{proc.output()}")
        return port_open(port)

    wait_until(up, timeout=30, what=f"podium mcp {name} on port {port}")
    return proc


@pytest.fixture(scope="module")
def calc_url() -> Iterator[str]:
    port = free_port()
    proc = start_http("calc", port, "--workers", "2", env={"PODIUM_MCP_TOKEN": TOKEN})
    yield f"http://127.0.0.1:{port}/mcp"
    proc.close()


def docs_stdio(tmp_path: Path, **options: object) -> McpServerConfig:
    """The docs server over stdio, with an (empty) docs folder whose unique path marks its process."""
    marker = tmp_path / f"marker-{uuid.uuid4().hex}"
    marker.mkdir()
    command = ["podium", "mcp", "docs", "--transport", "stdio", "--docs-dir", str(marker)]
    return McpServerConfig.model_validate({"name": "docs", "command": command, **options})


def pids_running(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_every_agent_config_loads() -> None:
    for agent, servers in AGENTS.items():
        assert [s.name for s in load_config(agent).mcp] == servers, agent
    assert load_config("no-such-agent").mcp == []


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("{not json", "invalid JSON at line 1"),
        ('{"mcp": [{"name": "calc", "url": "http://x/mcp", "timeout_s": 0}]}', "mcp.0.timeout_s"),
        ('{"mcp": [{"name": "calc", "url": "http://x/mcp", "alow": ["evaluate"]}]}', "mcp.0.alow"),
        ('{"mcp": [{"name": "calc", "url": "http://x/mcp", "command": ["podium"]}]}', "exactly one of"),
        ('{"mcp": [{"name": "calc", "url": "ftp://x/mcp"}]}', "mcp.0.url"),
        ('{"mcp": [{"name": "Calc!", "in_process": "calc"}]}', "mcp.0.name"),
        ('{"mcp": [{"name": "calc", "in_process": "abacus"}]}', "unknown server 'abacus'"),
        (
            '{"mcp": [{"name": "a", "in_process": "calc"}, {"name": "a", "in_process": "docs"}]}',
            "repeated: a",
        ),
        ('{"tools": []}', "tools: Extra inputs"),
    ],
)
def test_a_bad_config_is_rejected_at_load_naming_the_field(tmp_path: Path, content: str, field: str) -> None:
    (tmp_path / "broken.json").write_text(content)
    with pytest.raises(AgentConfigError) as caught:
        mount_for_agent("broken", tmp_path)
    assert field in str(caught.value) and "broken.json" in str(caught.value)


def test_an_env_var_points_a_server_at_a_shared_http_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config("analyst").mcp[0]
    assert cfg.transport == "in_process"  # Podium mounts its own servers in process
    monkeypatch.setenv("PODIUM_MCP_CALC_URL", "http://calc:8711/mcp")
    moved = cfg.with_env_overrides()
    assert moved.transport == "http" and moved.url == "http://calc:8711/mcp"
    assert moved.token_env == "PODIUM_MCP_TOKEN" and moved.allow == cfg.allow


def test_tool_names_are_llm_safe() -> None:
    assert tool_name("calc", "evaluate") == "calc__evaluate"
    assert tool_name("docs", "read.page/v2") == "docs__read_page_v2"
    assert len(tool_name("x", "y" * 100)) == 64


async def test_an_agent_mounts_stdio_docs_and_http_calc(
    tmp_path: Path, calc_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALC_TOKEN_FOR_TEST", TOKEN)
    servers = [
        docs_stdio(tmp_path, allow=["search"]),
        McpServerConfig(
            name="calc", url=calc_url, token_env="CALC_TOKEN_FOR_TEST", allow=["evaluate", "statistics"]
        ),
    ]
    async with MountedTools(servers, agent="test") as tools:
        assert isinstance(tools, ToolBox)
        specs = {s.name: s for s in tools.specs()}
        assert set(specs) == {"docs__search", "calc__evaluate", "calc__statistics"}
        assert specs["calc__evaluate"].input_schema["required"] == ["expression"]
        assert "steps" in specs["calc__evaluate"].output_schema["properties"]
        assert specs["docs__search"].description.startswith("Full-text search")

        found = await tools.call("docs__search", {"query": "yield expression generator", "limit": 3})
        assert not found.is_error and found.data["hits"][0]["id"] == "yield"
        assert found.meta == {"server": "docs", "tool": "search"}
        computed = await tools.call("calc__evaluate", {"expression": "1200 - 15%"})
        assert computed.data["result"] == "1020" and '"result": "1020"' in computed.text

        failed = await tools.call("calc__evaluate", {"expression": "__import__('os')"})
        assert failed.is_error and "cannot evaluate expression" in failed.text
        wrong = await tools.call("calc__statistics", {"values": "1,2"})
        assert wrong.is_error and "\nvalues\n" in wrong.text

        async def must_not_connect() -> None:
            raise AssertionError("a refused tool must not reach its server")

        for link in tools.links:
            monkeypatch.setattr(link, "connected", must_not_connect)
        for refused in ("docs__read", "calc__loan_payment", "calc__nothing", "evaluate"):
            result = await tools.call(refused, {})
            assert result.is_error and "not available" in result.text


async def test_a_dead_stdio_server_is_reconnected_and_the_call_retried(tmp_path: Path) -> None:
    cfg = docs_stdio(tmp_path)
    marker = cfg.command[-1] if cfg.command else ""
    async with MountedTools([cfg]) as tools:
        first = await tools.call("docs__search", {"query": "with"})
        assert not first.is_error
        (pid,) = pids_running(marker)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pids_running(marker), what="the docs server to die")
        again = await tools.call("docs__search", {"query": "lambda anonymous function"})
        assert not again.is_error and again.data["hits"][0]["id"] == "lambda"
        assert len(pids_running(marker)) == 1 and pids_running(marker) != [pid]
    assert pids_running(marker) == []


async def test_a_dead_http_server_is_an_error_result_then_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    proc = start_http("calc", port)
    try:
        cfg = McpServerConfig(name="calc", url=f"http://127.0.0.1:{port}/mcp", timeout_s=5)
        async with MountedTools([cfg]) as tools:
            assert (await tools.call("calc__evaluate", {"expression": "2+2"})).data["value"] == 4
            proc.kill()
            down = await tools.call("calc__evaluate", {"expression": "2+2"})
            assert down.is_error and "server unavailable" in down.text
            proc.close()
            proc = start_http("calc", port)
            back = await tools.call("calc__evaluate", {"expression": "3+3"})
            assert not back.is_error and back.data["value"] == 6
    finally:
        proc.close()


async def test_timeouts_are_error_results(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("PODIUM_NAMESPACE", namespace)
    async with MountedTools([McpServerConfig(name="blackboard", in_process="blackboard")]) as tools:
        (link,) = tools.links
        link.cfg = link.cfg.model_copy(update={"timeout_s": 1e-9})
        result = await tools.call("blackboard__list", {"context_id": "c"})
        assert result.is_error and "timed out" in result.text


async def test_unreachable_or_unauthorised_servers_fail_the_mount_by_name(calc_url: str) -> None:
    nowhere = McpServerConfig(name="calc", url=f"http://127.0.0.1:{free_port()}/mcp", timeout_s=5)
    with pytest.raises(MountError, match="calc"):
        async with MountedTools([nowhere], agent="analyst"):
            pass
    no_token = McpServerConfig(name="calc", url=calc_url, token_env="UNSET_TOKEN_VAR_FOR_TEST", timeout_s=5)
    with pytest.raises(MountError, match="cannot mount MCP server"):
        async with MountedTools([no_token]):
            pass
    broken = McpServerConfig(name="abacus", command=["podium", "mcp", "abacus"], timeout_s=10)
    with pytest.raises(MountError, match="abacus"):
        async with MountedTools([broken]):
            pass


async def test_mount_for_agent_uses_its_config(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("PODIUM_NAMESPACE", namespace)
    async with mount_for_agent("researcher") as tools:
        names = {s.name for s in tools.specs()}
        assert names == {
            "docs__search", "docs__read",
            "blackboard__write", "blackboard__append", "blackboard__read", "blackboard__list",
        }  # fmt: skip
        note = await tools.call(
            "blackboard__write",
            {"context_id": "conv-1", "key": "sources", "value": "with", "author": "researcher"},
        )
        assert not note.is_error and note.data["note"]["version"] == 1
        assert (await tools.call("blackboard__delete", {"context_id": "conv-1", "key": "sources"})).is_error
    async with mount_for_agent("echo") as nothing:
        assert nothing.specs() == []


def test_agent_configs_are_valid_json_files() -> None:
    for agent in AGENTS:
        path = Path(__file__).resolve().parents[2] / "agents" / "config" / f"{agent}.json"
        assert isinstance(json.loads(path.read_text()), dict)


async def test_mounted_servers_use_the_agents_redis_and_namespace(
    redis: Any, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("PODIUM_NAMESPACE", raising=False)
    async with mount_for_agent("writer", redis=redis, redis_url=redis_url, namespace=namespace) as tools:
        args = {"context_id": "conv-9", "key": "draft", "value": "v1", "author": "writer"}
        assert not (await tools.call("blackboard__write", args)).is_error
    assert await redis.hexists(Keys(namespace).blackboard("conv-9"), "draft")  # the client is still open

    servers = [
        McpServerConfig(name="board_stdio", command=["podium", "mcp", "blackboard"]),
        McpServerConfig(name="board", in_process="blackboard"),
    ]
    shared = Shared(redis=redis, redis_url=redis_url, namespace=namespace)
    async with MountedTools(servers, shared=shared) as tools:
        args = {"context_id": "conv-9", "key": "draft", "value": "+v2", "author": "reviewer"}
        assert not (await tools.call("board_stdio__append", args)).is_error
        note = await tools.call("board__read", {"context_id": "conv-9", "key": "draft"})
        assert note.data["value"] == "v1+v2" and note.data["author"] == "reviewer"
