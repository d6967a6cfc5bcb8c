"""`podium up` as a user runs it: the embedded one-process system answering `podium ask` (a research
question and a computation) and direct A2A calls, stopping cleanly on SIGTERM. The one-process-per-agent
system is in test_up_supervise.py (replicas, restarts) and test_up_children.py (no process left behind)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import sys

import anyio
import httpx
import pytest
from a2a.types.a2a_pb2 import TaskState

from tests.agents.agent_procs import fetch_card, make_client, text_request
from tests.docs import block
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
    proc, urls = _start(env={"REDIS_URL": "", "ANTHROPIC_API_KEY": ""})
    try:
        out = proc.output()
        assert "one process, embedded bus" in out
        everything = {"orchestrator", "researcher", "analyst", "writer", "reviewer", "echo"}
        assert list(urls)[:2] == ["orchestrator", "registry"] and set(urls) == everything | {"registry"}
        assert "alive in the registry: orchestrator, researcher, analyst, writer, reviewer, echo" in out
        assert await _registered(urls["registry"]) == everything
        assert "36" in await _ask_analyst(urls["analyst"])
        # podium ask, as the hint printed says, on a research question and a computation
        hint = re.search(r'Ask it: (podium ask --url \S+) "', out)
        assert hint and hint.group(1) == f"podium ask --url {urls['orchestrator']}", out
        # one question with a research part and a computation part: planned as parallel sections
        answer = _podium_ask(
            urls["orchestrator"], "How does Python's with statement work? And also, what is 15% of 240?"
        )
        text, sources = answer.split("\n\nSources:", 1)
        markers = set(re.findall(r"\[(\d+)\]", text))
        assert markers and all(f"[{m}]" in sources for m in markers), answer  # cited, each source listed
        assert "context manager" in text.lower() and "__enter__" in answer, answer
        assert re.search(r"15% of 240 (=|is) 36\b", text), answer
        assert "calc:evaluate" in sources and re.search(r"\[\d+\] with — ", sources), sources
        # the README's curl, as written but for the port (where curl exists)
        command = block("calling.md", "## curl", "bash").replace(
            "http://127.0.0.1:8700/", urls["orchestrator"] + "/"
        )
        if shutil.which("curl"):
            with anyio.fail_after(120):
                done = await anyio.run_process(["bash", "-c", command], check=False)
            task = json.loads(done.stdout)["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED", done.stdout
            assert re.search(r"(=|is) 36\b", task["artifacts"][0]["parts"][0]["text"]), done.stdout
        # the README's own client program, as written but for the URL
        program = block("README.md", "## Quickstart").replace("http://127.0.0.1:8700", urls["orchestrator"])
        with anyio.fail_after(120):
            ran = await anyio.run_process([sys.executable, "-c", program], check=False)
        assert ran.returncode == 0, ran.stderr.decode()
        assert re.search(r"(=|is) 36\b", ran.stdout.decode()), ran.stdout.decode()
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(30) == 0
        assert "podium up: stopping" in proc.output()
    finally:
        proc.close()


def _podium_ask(url: str, question: str) -> str:
    ask = Proc.podium("ask", "--url", url, "--quiet", question)
    try:
        assert ask.proc.wait(90) == 0, ask.output()
        return ask.output()
    finally:
        ask.close()


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
