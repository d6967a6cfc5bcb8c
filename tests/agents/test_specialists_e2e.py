"""End to end: the four specialists as real `podium agent` processes on the test Redis (their MCP
servers mounted as shipped: docs, calc and the blackboard in process), called with the
a2a client over the bus and over JSON-RPC. Known answers, kept citations, a review loop through the
blackboard, and misrouted tasks rejected with a reason."""

from __future__ import annotations

import json
import math
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from a2a.client.client import Client
from a2a.helpers.proto_helpers import get_data_parts, new_data_part
from a2a.types.a2a_pb2 import SendMessageRequest, Task, TaskState

from podium.bus.a2a_client import BusClient
from podium.bus.connection import connect
from podium.bus.keys import Keys
from tests.agents.agent_procs import AgentProc, fetch_card, make_client, text_request
from tests.agents.test_specialists_support import assert_camel
from tests.support import RedisServer

pytestmark = pytest.mark.anyio

AGENTS = ("researcher", "analyst", "writer", "reviewer")


@pytest.fixture(scope="module")
def e2e_namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def agents(redis_server: RedisServer, e2e_namespace: str) -> Iterator[dict[str, AgentProc]]:
    """One process per specialist for the whole module, offline (no API key). Only the flags name the
    Redis and namespace: the blackboard the agents mount must follow them."""
    env = {"ANTHROPIC_API_KEY": "", "REDIS_URL": "", "PODIUM_NAMESPACE": ""}
    procs = {
        name: AgentProc(name, redis_server.url, e2e_namespace, f"{name}-e2e", env=env) for name in AGENTS
    }
    try:
        for proc in procs.values():
            proc.wait_ready(timeout=60)
        yield procs
    finally:
        for proc in procs.values():  # all stop at once, then each is reaped
            proc.proc.signal(signal.SIGTERM)
        for proc in procs.values():
            proc.close()


@pytest.fixture
async def bus_client(redis_server: RedisServer, e2e_namespace: str) -> AsyncIterator[BusClient]:
    redis = connect(redis_server.url)
    async with BusClient(redis, Keys(e2e_namespace), sender="test", default_timeout=60) as client:
        yield client
    await redis.aclose()


async def call(
    agents: dict[str, AgentProc],
    bus_client: BusClient,
    name: str,
    request: SendMessageRequest,
    binding: str = "redis-streams",
) -> Task:
    """Send ``request`` to agent ``name`` over ``binding`` (blocking) and return the final task."""
    card = await fetch_card(agents[name].url)
    client: Client = make_client(card, binding, bus=bus_client, streaming=False)
    try:
        with anyio.fail_after(60):
            events = [ev async for ev in client.send_message(request)]
    finally:
        await client.close()
    tasks = [ev.task for ev in events if ev.HasField("task")]
    assert tasks, events
    return tasks[-1]


def ask(text: str, data: dict[str, Any] | None = None, *, context_id: str = "") -> SendMessageRequest:
    request = text_request(text)
    if data is not None:
        request.message.parts.append(new_data_part(data))
    if context_id:
        request.message.context_id = context_id
    return request


def result(task: Task) -> dict[str, Any]:
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, task.status
    [artifact] = task.artifacts
    [data] = get_data_parts(artifact.parts)
    assert any(p.text for p in artifact.parts)
    assert_camel(data)
    return data


def reason(task: Task) -> dict[str, Any]:
    assert task.status.state == TaskState.TASK_STATE_REJECTED, task.status
    [data] = get_data_parts(task.status.message.parts)
    assert_camel(data)
    return data


@pytest.mark.parametrize("binding", ["redis-streams", "JSONRPC"])
async def test_researcher_cites_the_with_statement(agents, bus_client, binding: str) -> None:
    question = "What does the Python language reference say about the with statement and context managers?"
    data = result(await call(agents, bus_client, "researcher", ask(question), binding))
    assert data["covered"] is True and data["engine"] == "offline"
    assert "with" in {c["docId"] for c in data["citations"]}
    with_quotes = [c["quote"] for c in data["citations"] if c["docId"] == "with"]
    from pydoc_data.topics import topics

    assert all(q and q.split()[0] in topics["with"] for q in with_quotes)
    assert "docs__search" in data["toolsCalled"] and "docs__read" in data["toolsCalled"]
    assert 0 < data["confidence"] <= 1


@pytest.mark.parametrize("binding", ["redis-streams", "JSONRPC"])
async def test_analyst_computes_known_answers(agents, bus_client, binding: str) -> None:
    data = result(await call(agents, bus_client, "analyst", ask("What is 15% of 240?"), binding))
    assert data["value"] == 36 and data["toolsCalled"] == ["calc__evaluate"] and data["steps"]

    principal, rate, years = 200_000, 6.0, 30
    r, n = rate / 100 / 12, years * 12
    expected = principal * r / (1 - (1 + r) ** -n)
    question = f"What is the monthly payment on a {principal} loan at {rate:g}% over {years} years?"
    data = result(await call(agents, bus_client, "analyst", ask(question), binding))
    assert math.isclose(data["value"], expected, abs_tol=0.005)
    assert data["operation"] == "loan" and data["toolsCalled"] == ["calc__loan_payment"]


async def test_streaming_over_the_bus_shows_progress_then_the_artifact(agents, bus_client) -> None:
    card = await fetch_card(agents["analyst"].url)
    client = make_client(card, "redis-streams", bus=bus_client, streaming=True)
    try:
        with anyio.fail_after(60):
            events = [ev async for ev in client.send_message(ask("What is (17.5 + 4) * 3?"))]
    finally:
        await client.close()
    kinds = [ev.WhichOneof("payload") for ev in events]
    assert kinds[0] == "task" and "artifact_update" in kinds
    states = [ev.status_update.status.state for ev in events if ev.HasField("status_update")]
    assert states[0] == TaskState.TASK_STATE_WORKING and states[-1] == TaskState.TASK_STATE_COMPLETED
    [artifact] = [ev.artifact_update.artifact for ev in events if ev.HasField("artifact_update")]
    assert get_data_parts(artifact.parts)[0]["value"] == 64.5
    assert artifact.artifact_id == f"{events[0].task.id}-analyst"


async def test_misrouted_tasks_are_rejected_with_the_right_agent(agents, bus_client) -> None:
    poem = reason(await call(agents, bus_client, "analyst", ask("Write a poem about the sea")))
    assert poem["agent"] == "analyst" and "creative" in poem["reason"]
    compute = reason(await call(agents, bus_client, "researcher", ask("What is 15% of 240?")))
    assert compute["suggestedAgent"] == "analyst" and "calculation" in compute["reason"]
    no_draft = reason(await call(agents, bus_client, "reviewer", ask("How do context managers work?")))
    assert no_draft["suggestedAgent"] == "researcher"


QUESTION = "What does the with statement do, and how does a context manager define the runtime context?"


async def test_pipeline_shares_work_through_the_blackboard(agents, bus_client, e2e_namespace: str) -> None:
    """researcher -> writer -> reviewer in one conversation, each reading what the previous one wrote."""
    context = str(uuid.uuid4())
    research = await call(agents, bus_client, "researcher",
                          ask(QUESTION, {"blackboard": {"write": "findings"}}, context_id=context))  # fmt: skip
    findings = result(research)
    assert findings["findings"] and "blackboard__write" in findings["toolsCalled"]

    draft = result(await call(agents, bus_client, "writer", ask(
        "Write the answer from the findings on the blackboard",
        {"question": QUESTION, "blackboard": {"read": ["findings"], "write": "draft"}}, context_id=context,
    ), "JSONRPC"))  # fmt: skip
    assert draft["toolsCalled"][0] == "blackboard__read" and draft["sources"]
    cited = {s["docId"] for s in draft["sources"]}
    assert cited == {c["docId"] for c in findings["citations"]}  # the writer kept every source

    review = result(await call(agents, bus_client, "reviewer", ask(
        "Review the draft on the blackboard",
        {"question": QUESTION, "blackboard": {"read": "draft", "write": "review"}}, context_id=context,
    )))  # fmt: skip
    assert review["verdict"] == "pass", review["feedback"]

    redis = bus_client.bus.redis
    board = await redis.hgetall(Keys(e2e_namespace).blackboard(context))
    assert {k.decode() for k in board} == {"findings", "draft", "review"}
    stored = json.loads(json.loads(board[b"draft"])["value"])
    assert stored["taskId"] and stored["agent"] == "writer" and stored["result"] == draft["result"]


async def test_review_fails_an_uncited_claim_and_the_revision_passes(agents, bus_client) -> None:
    notes = [
        {"text": "The with statement wraps the execution of a block with methods defined by a context manager.",
         "citations": [{"doc_id": "with", "quote": "The \"with\" statement is used to wrap the execution of a block"}]},
        {"text": "A context manager is an object that defines the runtime context to be established.",
         "citations": [{"doc_id": "context-managers", "quote": "A *context manager* is an object that defines the runtime context"}]},
    ]  # fmt: skip
    sources = [{"doc_id": n["citations"][0]["doc_id"], "quote": n["citations"][0]["quote"]} for n in notes]
    draft = (
        "The with statement wraps the execution of a block with methods defined by a context manager [1]. "
        "A context manager is an object that defines the runtime context to be established."
    )
    review = result(await call(agents, bus_client, "reviewer", ask(
        "Review this draft", {"question": QUESTION, "draft": draft, "citations": sources})))  # fmt: skip
    assert review["verdict"] == "revise"
    [problem] = review["feedback"]
    assert problem["check"] == "citations" and problem["sentence"].startswith("A context manager is")

    revised = result(await call(agents, bus_client, "writer", ask("Revise this draft", {
        "question": QUESTION, "draft": draft, "citations": sources, "notes": notes, "feedback": review["feedback"],
    }), "JSONRPC"))  # fmt: skip
    assert revised["revision"] is True and all(c["addressed"] for c in revised["changes"])
    assert "[2]" in revised["result"]

    again = result(await call(agents, bus_client, "reviewer", ask(
        "Review this draft", {"question": QUESTION, "draft": revised["result"]})))  # fmt: skip
    assert again["verdict"] == "pass", again["feedback"]
