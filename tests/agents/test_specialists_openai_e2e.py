"""End to end with an OpenAI-compatible server: a real `podium agent researcher` process configured by
environment variables alone (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``PODIUM_MODEL``) against a fake
Chat Completions server in the test. The model asks for ``docs__search`` and ``docs__read``, which the
agent runs on its real docs server; the answer cites what they returned. A rejected key and a model
without tools are said in one line, the agent answers offline, and the key is never shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from a2a.helpers.proto_helpers import get_data_parts
from a2a.types.a2a_pb2 import TaskState

from tests.agents.agent_procs import AgentProc, fetch_card, make_client, text_request
from tests.agents.openai_fake import Error, FakeOpenAI, Turn, serve
from tests.support import ROOT

pytestmark = pytest.mark.anyio

KEY = "sk-e2e-openai-key-never-shown"
MODEL = "qwen2.5:7b"


def model_turn(body: dict[str, Any]) -> Turn:
    """What a model would do next: search, read the top hit, then answer citing it."""
    last = body["messages"][-1]
    if last["role"] != "tool":
        return Turn(tool_calls=[("call_s", "docs__search", {"query": "with statement"})], usage=(400, 30))
    content = json.loads(last["content"])
    if "hits" in content:
        return Turn(tool_calls=[("call_r", "docs__read", {"id": content["hits"][0]["id"]})], usage=(700, 25))
    return Turn(text=f"- The with statement wraps a block in a context manager's methods [{content['id']}]",
                usage=(1500, 40))  # fmt: skip


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with serve(FakeOpenAI()) as server:
        yield server


async def ask(redis_url: str, fake: FakeOpenAI, question: str) -> tuple[Any, str]:
    env = {"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": KEY, "PODIUM_MODEL": MODEL, "ANTHROPIC_API_KEY": "",
           "PODIUM_LOG_LEVEL": "DEBUG"}  # fmt: skip
    agent = AgentProc("researcher", redis_url, f"t{uuid.uuid4().hex[:12]}", "openai-e2e", env=env).wait_ready(
        60
    )
    try:
        client = make_client(await fetch_card(agent.url), "JSONRPC", streaming=False)
        try:
            events = [ev async for ev in client.send_message(text_request(question))]
        finally:
            await client.close()
        agent.proc.terminate()
        log = agent.proc.output()
    finally:
        agent.close()
    return events[-1].task, log


async def test_researcher_runs_the_models_tool_calls_on_its_docs_server_and_cites_them(
    redis_url: str, fake: FakeOpenAI
) -> None:
    fake.script(
        Error(429, "Rate limit reached for requests", "rate_limit_error", {"retry-after": "0"}), model_turn
    )
    task, log = await ask(redis_url, fake, "What does the with statement do?")
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, task.status
    [data] = get_data_parts(task.artifacts[0].parts)
    assert data["engine"] == MODEL and data["toolsCalled"] == ["docs__search", "docs__read"]
    [citation] = data["citations"]
    assert citation["docId"] == "with" and "context manager" in citation["quote"]
    # the 429 was retried: the same first request twice, then the tool loop's two more turns
    assert len(fake.bodies) == 4 and fake.bodies[0] == fake.bodies[1]
    assert {t["function"]["name"] for t in fake.bodies[0]["tools"]} == {"docs__search", "docs__read"}
    assert all(b["model"] == MODEL and b["stream"] for b in fake.bodies)
    read_result = fake.bodies[3]["messages"][-1]
    assert read_result["role"] == "tool" and json.loads(read_result["content"])["id"] == "with"
    assert data["usage"]["inputTokens"] == 400 + 700 + 1500 and data["usage"]["outputTokens"] == 95
    assert fake.headers[0]["authorization"] == f"Bearer {KEY}" and KEY not in log


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (Error(401, f"Incorrect API key provided: {KEY}"), "rejected the API key"),
        (
            Error(400, f"registry.ollama.ai/library/{MODEL} does not support tools"),
            "does not support tool calls",
        ),
    ],
    ids=["bad-key", "no-tools"],
)
async def test_a_failing_model_is_named_in_one_line_and_the_researcher_answers_offline(
    redis_url: str, fake: FakeOpenAI, error: Error, said: str
) -> None:
    fake.script(error)
    task, log = await ask(redis_url, fake, "What does the with statement do?")
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, task.status
    [data] = get_data_parts(task.artifacts[0].parts)
    assert data["engine"] == "offline" and data["citations"]  # the deterministic researcher answered
    [warning] = [w for w in data["warnings"] if "the model failed" in w]
    assert said in warning and "\n" not in warning and len(fake.bodies) == 1
    assert KEY not in json.dumps(data) and KEY not in log


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"PODIUM_LLM_PROVIDER": "gemini"}, "PODIUM_LLM_PROVIDER must be one of anthropic, openai, offline"),
        ({"PODIUM_LLM_PROVIDER": "openai"}, "PODIUM_LLM_PROVIDER=openai needs OPENAI_BASE_URL"),
    ],
)
def test_a_provider_the_environment_cannot_use_stops_the_agent_at_once_in_one_line(
    env: dict[str, str], said: str
) -> None:
    # Redis is not even there: the model settings are checked before any waiting for it
    done = subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "agent", "writer", "--redis-url", "redis://127.0.0.1:1/0"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, **env},
    )  # fmt: skip
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
