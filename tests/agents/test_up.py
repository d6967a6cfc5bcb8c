"""`podium up` as a user runs it: the embedded one-process system and the one-process-per-agent system,
each answering over A2A, each stopping cleanly on SIGTERM."""

from __future__ import annotations

import re
import signal
import socket

import anyio
import httpx
import pytest
from a2a.types.a2a_pb2 import TaskState

from tests.agents.agent_procs import fetch_card, make_client, text_request
from tests.support import Proc, wait_until

pytestmark = pytest.mark.anyio

LINE = re.compile(r"^\s+(\S+)\s+(http://\S+)$", re.M)


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[Proc, dict[str, str]]:
    proc = Proc.podium("up", "--any-port", *args, env=env)

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"podium up exited:\n{proc.output()}")
        return "Ctrl-C stops everything." in proc.output()

    wait_until(ready, timeout=90, what="podium up to print its URLs")
    return proc, dict(LINE.findall(proc.output()))


async def _ask_analyst(url: str) -> str:
    card = await fetch_card(url)
    client = make_client(card, "JSONRPC", streaming=False)
    try:
        with anyio.fail_after(60):
            events = [ev async for ev in client.send_message(text_request("What is 15% of 240?"))]
    finally:
        await client.close()
    task = events[-1].task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    return " ".join(p.text for a in task.artifacts for p in a.parts if p.text)


async def _registered(registry: str) -> set[str]:
    async with httpx.AsyncClient(timeout=10) as http:
        body = (await http.get(f"{registry}/agents")).json()
    return {a["name"] for a in body["agents"]}


async def test_podium_up_embedded_runs_everything_in_one_process() -> None:
    proc, urls = _start("--agents", "analyst,echo", env={"REDIS_URL": ""})
    try:
        assert "one process, embedded bus" in proc.output()
        assert set(urls) == {"analyst", "echo", "registry"}
        assert "36" in await _ask_analyst(urls["analyst"])
        assert await _registered(urls["registry"]) == {"analyst", "echo"}
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(30) == 0
        assert "podium up: stopping" in proc.output()
    finally:
        proc.close()


async def test_podium_up_with_redis_runs_one_process_per_agent(redis_url: str, namespace: str) -> None:
    proc, urls = _start(
        "--agents", "analyst,echo", env={"REDIS_URL": redis_url, "PODIUM_NAMESPACE": namespace}
    )
    try:
        assert "processes on redis://" in proc.output()
        assert "36" in await _ask_analyst(urls["analyst"])
        assert await _registered(urls["registry"]) == {"analyst", "echo"}
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(40) == 0
    finally:
        proc.close()


def test_podium_up_rejects_unknown_agents() -> None:
    proc = Proc.podium("up", "--agents", "nobody")
    try:
        assert proc.proc.wait(30) == 2
        assert "unknown agent(s) nobody" in proc.output()
    finally:
        proc.close()


def test_podium_up_names_the_ports_already_in_use() -> None:
    """A second `podium up` (here: something else on the registry's port) gets one line naming the port
    and what to do, not a traceback from each agent's server."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = Proc.podium("up", "--agents", "echo", "--registry-port", str(port))
        try:
            assert proc.proc.wait(30) == 1
            out = proc.output()
            assert f"port {port} (registry)" in out and "--any-port" in out, out
            assert "Traceback" not in out
        finally:
            proc.close()
