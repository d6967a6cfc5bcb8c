"""Orchestration that survives, end to end with real processes: retries of transient failures, a
circuit breaker shared by orchestrator replicas through Redis, fallback to another agent with the skill,
timeouts with partial answers, budgets, delegation loops, and human approval through the A2A client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import GetTaskRequest, Role, SendMessageRequest, Task, TaskState

from podium.agents.orchestrator.state.breakers import breaker_states
from podium.bus.connection import connect
from podium.bus.keys import Keys
from tests.agents.orchestrator.cluster import Cluster, answer_of, status_text
from tests.support import Proc, RedisServer

pytestmark = pytest.mark.anyio
COOLDOWN_S = 5.0


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = Path(tmp_path_factory.mktemp("resilience"))
    c = Cluster(
        redis_server.url,
        f"t{uuid.uuid4().hex[:12]}",
        home,
        orchestrator={
            "retries": 2,
            "breaker": {"threshold": 3, "cooldownS": COOLDOWN_S},
            "approval": {"timeoutS": 3, "default": "deny"},
        },
    )
    c.add_worker("flaky")
    c.add_worker("breakable")
    c.add_worker("counter-b", "counter", id="fragile")  # a second agent with the breakable's skill
    c.add_worker("hanging")
    c.add_worker("ping")
    c.add_worker("pong")
    c.add_worker("counter")
    c.add_worker("publisher", "counter", id="publish", tags=["approval"], description="Publishes a post.")
    try:
        c.start("flaky", "breakable", "counter-b", "hanging", "ping", "pong", "counter", "publisher", "echo")
        c.start("orchestrator", instance="orchestrator-1")
        c.start("orchestrator", instance="orchestrator-2")
        yield c
    finally:
        c.close()


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"plan": {"steps": list(steps)}}


async def test_a_transient_failure_is_retried_with_backoff_until_it_succeeds(cluster: Cluster) -> None:
    task, _ = await cluster.ask(
        "flaky", data=plan({"id": "f", "call": {"skill": "flaky-echo", "text": "flaky once"}})
    )
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    entries = await cluster.trace(task.id)
    retries = [e for e in entries if e.event == "retry"]
    assert [e.state for e in retries] == ["attempt 2", "attempt 3"]
    assert all("flaky: failure" in e.reason and e.data["delayS"] >= 0 for e in retries)
    assert (await cluster.runs())["flaky|flaky once"] == 3


async def test_a_breaker_opens_the_fallback_answers_and_every_replica_sees_it(cluster: Cluster) -> None:
    redis = connect(cluster.redis_url)
    broken = f"{cluster.namespace}:test:broken:breakable"
    await redis.set(broken, "1")
    try:
        step = {"id": "s", "call": {"skill": "fragile", "text": "fragile work"}}
        task, _ = await cluster.ask("fragile", data=plan(step))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
        entries = await cluster.trace(task.id)
        assert [e.state for e in entries if e.event == "breaker"] == ["open"]
        fallback = [e for e in entries if e.event == "fallback"]
        assert fallback and fallback[0].agent == "counter-b"
        assert answer_of(task)[1]["steps"][0]["agent"] == "counter-b"
        # a second orchestrator replica does not call the broken agent: the breaker is in Redis
        second = cluster.procs["orchestrator-2"].url
        task, _ = await cluster.ask("fragile again", data=plan(step), url=second)
        entries = await cluster.trace(task.id)
        skipped = [e for e in entries if e.event == "breaker"]
        assert skipped and skipped[0].agent == "breakable" and skipped[0].state == "open"
        assert not [e for e in entries if e.event == "handoff" and e.agent == "breakable"]
        # repaired, and after the cool-down one probe goes through, which closes the breaker
        await redis.delete(broken)
        opened = (await breaker_states(redis, Keys(cluster.namespace), ["breakable"]))["breakable"][
            "openedAt"
        ]
        with anyio.fail_after(30):
            while time.time() < opened + COOLDOWN_S:  # noqa: ASYNC110 - waiting out the cool-down
                await anyio.sleep(0.1)
        task, _ = await cluster.ask("fragile once more", data=plan(step))
        entries = await cluster.trace(task.id)
        assert [(e.agent, e.state) for e in entries if e.event == "breaker"] == [("breakable", "closed")]
        assert [e.data["breaker"] for e in entries if e.event == "handoff"] == ["half-open"]
        assert answer_of(task)[1]["steps"][0]["agent"] == "breakable"
    finally:
        await redis.delete(broken)
        await redis.aclose()


async def test_a_hung_agent_times_out_and_the_answer_names_the_gap(cluster: Cluster) -> None:
    task, _ = await cluster.ask(
        "two things",
        data=plan(
            {"id": "slow", "part": "the slow part", "timeoutS": 1.5, "retries": 0, "call": {"skill": "slow"}},
            {"id": "quick", "part": "the quick part", "call": {"skill": "count", "text": "quick part"}},
        ),
    )
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    text, data = answer_of(task)
    assert "quick part" in text and data["partial"] is True
    assert any("the slow part" in g and "did not answer within 1.5s" in g for g in data["gaps"]), data["gaps"]


async def test_a_required_step_that_fails_fails_the_task_with_the_partial_answer(cluster: Cluster) -> None:
    task, _ = await cluster.ask(
        "required",
        data=plan(
            {"id": "quick", "part": "quick", "call": {"skill": "count", "text": "before the failure"}},
            {
                "id": "slow",
                "timeoutS": 1,
                "retries": 0,
                "required": True,
                "call": {"skill": "slow"},
                "dependsOn": ["quick"],
            },
        ),
    )
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert "required step 'slow' failed" in status_text(task) and "partial answer is attached" in status_text(
        task
    )
    assert "before the failure" in answer_of(task)[0]


async def test_a_budget_of_two_hops_stops_a_plan_that_needs_three(cluster: Cluster) -> None:
    steps = [
        {
            "id": f"s{i}",
            "call": {"skill": "count", "text": f"hop {i}"},
            **({"dependsOn": [f"s{i - 1}"]} if i > 1 else {}),
        }
        for i in (1, 2, 3)
    ]
    message = new_text_message("three hops", role=Role.ROLE_USER)
    message.parts.append(new_data_part(plan(*steps)))
    message.metadata.update({"podium.budget": {"hops": 2}})
    async with cluster.client() as client:
        events = [e async for e in client.send_message(SendMessageRequest(message=message))]
        task: Task = await client.get_task(GetTaskRequest(id=events[0].task.id))
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert "hop budget of 2" in status_text(task)
    text, data = answer_of(task)
    assert "hop 2" in text.split("Not answered")[0] and "hop 3" not in text.split("Not answered")[0]
    assert any("hop budget" in g for g in data["gaps"])
    runs = await cluster.runs()
    assert runs.get("counter|hop 1") == 1 and runs.get("counter|hop 2") == 1 and "counter|hop 3" not in runs
    assert [e.state for e in await cluster.trace(task.id) if e.event == "budget"] == ["exhausted"]


async def test_agents_handing_a_task_back_and_forth_are_stopped(cluster: Cluster) -> None:
    task, _ = await cluster.ask(
        "bounce", data=plan({"id": "b", "part": "bounce", "call": {"skill": "bounce"}})
    )
    entries = await cluster.trace(task.id)
    assert [e.agent for e in entries if e.event == "handoff" and e.state == "rerouted"] == ["pong"]
    [loop] = [e for e in entries if e.event == "loop-detected"]
    assert "ping -> pong -> ping" in loop.reason
    assert any("keep handing the task to each other" in g for g in answer_of(task)[1]["gaps"])


async def _ask_until_input(cluster: Cluster, client: Any, text: str) -> Task:
    message = new_text_message(text, role=Role.ROLE_USER)
    message.parts.append(
        new_data_part(
            plan(
                {"id": "draft", "call": {"skill": "count", "text": f"draft for {text}"}},
                {
                    "id": "publish",
                    "part": "publish it",
                    "call": {"skill": "publish", "text": f"publish {text}"},
                    "dependsOn": ["draft"],
                },
            )
        )
    )
    events = [e async for e in client.send_message(SendMessageRequest(message=message))]
    task = await client.get_task(GetTaskRequest(id=events[0].task.id))
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, status_text(task)
    assert "publish" in status_text(task) and "tagged as needing approval" in status_text(task)
    return task


async def _answer(client: Any, task: Task, text: str, data: dict[str, Any] | None = None) -> Task:
    message = new_text_message(text, role=Role.ROLE_USER, task_id=task.id, context_id=task.context_id)
    if data:
        message.parts.append(new_data_part(data))
    [_ async for _ in client.send_message(SendMessageRequest(message=message))]
    return await client.get_task(GetTaskRequest(id=task.id))


async def test_approval_approve_continues(cluster: Cluster) -> None:
    async with cluster.client() as client:
        task = await _ask_until_input(cluster, client, "post A")
        assert (
            "counter|draft for post A" in await cluster.runs()
            and "publisher|publish post A" not in await cluster.runs()
        )
        task = await _answer(client, task, "approve")
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    assert (await cluster.runs())["publisher|publish post A"] == 1
    assert (await cluster.runs())["counter|draft for post A"] == 1  # not run again after the pause


async def test_approval_reject_skips_the_step_and_names_it(cluster: Cluster) -> None:
    async with cluster.client() as client:
        task = await _ask_until_input(cluster, client, "post B")
        task = await _answer(client, task, "reject")
    assert "publisher|publish post B" not in await cluster.runs()
    assert any("the caller rejected this step" in g for g in answer_of(task)[1]["gaps"])


async def test_approval_edit_runs_the_edited_instruction(cluster: Cluster) -> None:
    async with cluster.client() as client:
        task = await _ask_until_input(cluster, client, "post C")
        task = await _answer(
            client, task, "edit", {"decision": "edit", "instruction": "publish a shorter post C"}
        )
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    runs = await cluster.runs()
    assert runs.get("publisher|publish a shorter post C") == 1 and "publisher|publish post C" not in runs


async def test_an_unanswered_approval_times_out_to_the_default_deny(cluster: Cluster) -> None:
    async with cluster.client() as client:
        task = await _ask_until_input(cluster, client, "post D")
        with anyio.fail_after(30):
            while task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
                await anyio.sleep(0.25)
                task = await client.get_task(GetTaskRequest(id=task.id))
    assert "publisher|publish post D" not in await cluster.runs()
    entries = await cluster.trace(task.id)
    assert [(e.state, e.reason) for e in entries if e.event == "approval" and e.state != "waiting"] == [
        ("reject", "by timeout")
    ]


async def test_tokens_the_agents_report_come_out_of_the_request_budget(cluster: Cluster) -> None:
    steps = [
        {
            "id": f"t{i}",
            "call": {"skill": "count", "text": f"tokens {i}", "metadata": {"usage_tokens": 700}},
            **({"dependsOn": [f"t{i - 1}"]} if i > 1 else {}),
        }
        for i in (1, 2, 3)
    ]
    message = new_text_message("spend tokens", role=Role.ROLE_USER)
    message.parts.append(new_data_part(plan(*steps)))
    message.metadata.update({"podium.budget": {"tokens": 1000}})
    async with cluster.client() as client:
        events = [e async for e in client.send_message(SendMessageRequest(message=message))]
        task: Task = await client.get_task(GetTaskRequest(id=events[0].task.id))
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert "token budget of 1000 is used up" in status_text(task)
    runs = await cluster.runs()
    assert (
        runs.get("counter|tokens 1") == 1
        and runs.get("counter|tokens 2") == 1
        and "counter|tokens 3" not in runs
    )


def test_podium_ask_answers_approval_with_approve_and_never_hangs_without_a_terminal(
    cluster: Cluster,
) -> None:
    """`podium ask` as a user types it: the plan reaches a step tagged as needing approval. With no
    terminal (stdin is not one here) it fails at once saying what to do; ``--approve`` answers yes."""
    question = "Publish a post announcing the spring release"
    proc = Proc.podium("ask", "--url", cluster.orchestrator_url, "--json", question)
    try:
        assert proc.proc.wait(60) == 1, proc.output()
        out = proc.output()
        assert "asks for approval and there is no terminal" in out and "--approve" in out, out
    finally:
        proc.close()
    proc = Proc.podium("ask", "--url", cluster.orchestrator_url, "--approve", question)
    try:
        assert proc.proc.wait(60) == 0, proc.output()
        assert "answering approve (--approve)" in proc.output()
    finally:
        proc.close()
    runs = anyio.run(cluster.runs)
    assert runs[f"publisher|{question}"] == 1, runs  # once: after the approval, not before it
