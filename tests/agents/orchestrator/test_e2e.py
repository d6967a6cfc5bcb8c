"""The orchestrator end to end: a real `podium agent orchestrator` process and the four specialists (plus
a disagreeing calculator and an outside agent) as real processes on the test Redis, called with the
a2a-sdk client over HTTP and over the bus. Answers are checked against values computed here, the
trace against the patterns the plan used."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from a2a.types.a2a_pb2 import TaskState

from tests.agents.orchestrator.cluster import Cluster, answer_of, status_text
from tests.support import Proc, RedisServer, free_port, wait_until

pytestmark = pytest.mark.anyio

SPECIALISTS = ("researcher", "analyst", "writer", "reviewer", "echo")


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("orchestra")
    c = Cluster(redis_server.url, f"t{uuid.uuid4().hex[:12]}", Path(home))
    c.add_worker("contrarian")
    try:
        c.start(*SPECIALISTS, "contrarian", "orchestrator")
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def outside(cluster: Cluster) -> Iterator[str]:
    """The outside unit-converter agent, registered through the registry's HTTP API by its URL."""
    port, registry_port = free_port(), free_port()
    agent = Proc(["python", "-m", "tests.agents.orchestrator.outside", "--port", str(port)])
    registry = Proc.podium(
        "registry",
        "--port",
        str(registry_port),
        "--redis-url",
        cluster.redis_url,
        "--namespace",
        cluster.namespace,
        "--allow-private-urls",
    )
    try:
        wait_until(lambda: "ready" in agent.output(), timeout=30, what="outside agent")
        url = f"http://127.0.0.1:{registry_port}"
        wait_until(lambda: _up(f"{url}/healthz"), timeout=30, what="registry")
        response = httpx.post(f"{url}/agents", json={"url": f"http://127.0.0.1:{port}"}, timeout=10)
        assert response.status_code in (200, 201), response.text
        yield response.json().get("name", "unit-converter")
    finally:
        agent.close()
        registry.close()


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def by_event(entries: list, event: str, step: str | None = None) -> list:
    return [e for e in entries if e.event == event and (step is None or e.step == step)]


async def test_documentation_question_runs_research_then_a_write_review_loop(cluster: Cluster) -> None:
    task, events = await cluster.ask("How does Python's with statement work? Cite the sections.")
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    text, data = answer_of(task)
    # cited: numbered markers in the text, each one in the sources list, quotes from real documents
    markers = {int(m) for m in re.findall(r"\[(\d+)\]", text.split("\n\nSources:")[0])}
    assert markers and markers <= {s["marker"] for s in data["sources"]}
    assert any(s["docId"] == "with" for s in data["sources"]), data["sources"]
    assert "with" in text.lower() and "context manager" in text.lower()
    entries = await cluster.trace(task.id)
    handoffs = [(e.step, e.agent, e.binding) for e in by_event(entries, "handoff")]
    assert ("research", "researcher", "redis-streams") in handoffs
    assert ("answer", "writer", "redis-streams") in handoffs and (
        "answer",
        "reviewer",
        "redis-streams",
    ) in handoffs
    loop = by_event(entries, "loop", "answer")
    assert loop and loop[-1].state == "accepted", [e.line() for e in loop]
    assert by_event(entries, "gate", "research")[0].state == "passed"
    # the caller saw the plan and the delegations as they happened
    seen = [p for e in events if e.HasField("status_update") for p in e.status_update.status.message.parts]
    kinds = [json.loads(json.dumps(_data(p))).get("event") for p in seen if p.HasField("data")]
    assert kinds.index("plan") < kinds.index("handoff") < kinds.index("answer")


def _data(part):  # type: ignore[no-untyped-def]
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(part.data)


async def test_a_computation_goes_to_the_analyst_and_keeps_its_exact_figures(cluster: Cluster) -> None:
    task, _ = await cluster.ask("What is the monthly payment on a 200,000 loan at 6% over 30 years?")
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    text, data = answer_of(task)
    r, n, principal = 0.06 / 12, 360, 200_000
    payment = principal * r / (1 - (1 + r) ** -n)
    assert f"{payment:,.2f}" in text  # 1,199.10
    assert [s["agent"] for s in data["steps"]] == ["analyst"]
    entries = await cluster.trace(task.id)
    assert by_event(entries, "gate", "compute")[0].state == "passed"


async def test_independent_parts_run_as_parallel_sections(cluster: Cluster) -> None:
    task, _ = await cluster.ask("What does the yield expression do in Python? And also, what is 15% of 240?")
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    text, _ = answer_of(task)
    assert "36" in text and "yield" in text.lower()
    entries = await cluster.trace(task.id)
    started = {e.step: e.ts for e in by_event(entries, "step") if e.state == "started"}
    ended = {e.step: e.ts for e in by_event(entries, "step") if e.state == "completed"}
    # the research chain and the computation overlap in time: each started before the other ended
    assert started["p2-compute"] < ended["p1-research"] and started["p1-research"] < ended["p2-compute"]
    assert "sections" in ended  # the join ran after both
    assert ended["sections"] >= max(ended["p1-answer"], ended["p2-compute"])


async def test_a_revision_loop_that_makes_no_progress_stops_with_its_draft(cluster: Cluster) -> None:
    """The reviewer asks about something the notes cannot cover; the writer's revision is its first draft
    again, so the loop stops there (not accepted) instead of sending the reviewer the same draft again."""
    plan = {
        "steps": [
            {"id": "notes", "pattern": "task", "call": {"skill": "research", "text": "the with statement"}},
            {
                "id": "answer",
                "pattern": "loop",
                "generator": {"skill": "write", "inputs": {"notes": "notes.findings"}},
                "evaluator": {
                    "skill": "review",
                    "data": {"question": "What is the airspeed velocity of an unladen swallow?"},
                    "inputs": {"draft": "$gen.result", "citations": "$gen.sources"},
                },
                "maxRounds": 4,
            },
        ]
    }
    task, _ = await cluster.ask("write up the with statement", data={"plan": plan})
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    text, _ = answer_of(task)
    assert "with" in text.lower() and re.search(r"\[\d+\]", text), text
    entries = await cluster.trace(task.id)
    loop = by_event(entries, "loop", "answer")
    assert [e.state for e in loop] == ["revise", "stalled"], "\n".join(e.line() for e in entries)
    reviews = [e for e in by_event(entries, "handoff", "answer") if e.agent == "reviewer"]
    assert len(reviews) == 1  # the unchanged draft was not reviewed again


async def test_a_vote_reaches_its_quorum_and_names_the_voter_that_disagreed(cluster: Cluster) -> None:
    plan = {
        "steps": [
            {
                "id": "vote",
                "pattern": "vote",
                "call": {"skill": "calculate", "text": "What is 15% of 240?"},
                "agents": ["analyst", "contrarian", "analyst"],
                "quorum": 2,
                "key": "value",
            }
        ]
    }
    task, _ = await cluster.ask("vote on a calculation", data={"plan": plan})
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    text, data = answer_of(task)
    assert re.search(r"15% of 240 (=|is) 36\b", text.split("Conflicts")[0]), text
    assert (
        data["contradictions"]
        and "contrarian" in data["contradictions"][0]
        and "37" in data["contradictions"][0]
    )
    vote = by_event(await cluster.trace(task.id), "vote", "vote")[0]
    assert vote.state == "decided" and vote.data["tally"] == {"36": 2, "37": 1}


async def test_a_vote_without_quorum_fails_the_step_and_names_the_gap(cluster: Cluster) -> None:
    plan = {
        "steps": [
            {
                "id": "vote",
                "pattern": "vote",
                "call": {"skill": "calculate", "text": "What is 2 + 2?"},
                "agents": ["analyst", "contrarian"],
                "quorum": 2,
            }
        ]
    }
    task, _ = await cluster.ask("vote", data={"plan": plan})
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert "quorum" in status_text(task) or "tie" in status_text(task)


async def test_a_dynamic_step_creates_one_worker_per_finding(cluster: Cluster) -> None:
    plan = {
        "steps": [
            {
                "id": "research",
                "pattern": "task",
                "call": {"skill": "research", "text": "How does the with statement work?"},
            },
            {
                "id": "each",
                "pattern": "dynamic",
                "over": "research.findings",
                "maxWorkers": 3,
                "worker": {"skill": "echo", "text": "finding {index}: {item}"},
            },
        ]
    }
    task, _ = await cluster.ask("research then one worker per finding", data={"plan": plan})
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    entries = await cluster.trace(task.id)
    research = next(e for e in by_event(entries, "result", "research") if e.state == "completed")
    dynamic = by_event(entries, "dynamic", "each")[0]
    workers = dynamic.data["workers"]
    assert 1 <= len(workers) <= 3
    handoffs = [e for e in by_event(entries, "handoff", "each")]
    assert len(handoffs) == len(workers) and {e.agent for e in handoffs} == {"echo"}
    text, _ = answer_of(task)
    for i in range(1, len(workers) + 1):
        assert f"finding {i}: " in text
    assert research.ts < dynamic.ts


async def test_an_outside_agent_is_called_over_http_and_specialists_over_the_bus(
    cluster: Cluster, outside: str
) -> None:
    task, _ = await cluster.ask("Convert 10 miles to km, and also what is 15% of 240?")
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    text, _ = answer_of(task)
    assert f"{10 * 1.609344:.4f}" in text and "36" in text
    results = {
        (e.agent, e.binding)
        for e in by_event(await cluster.trace(task.id), "result")
        if e.state == "completed"
    }
    assert (outside, "JSONRPC") in results and ("analyst", "redis-streams") in results


async def test_the_orchestrator_answers_over_the_bus_too(cluster: Cluster) -> None:
    task, _ = await cluster.ask("What is 12 times 7?", binding="redis-streams")
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    assert "84" in answer_of(task)[0]


@pytest.mark.parametrize(
    ("plan", "named"),
    [
        ({"steps": []}, "no steps"),
        (
            {"steps": [{"id": "a", "call": {"skill": "astrology"}}]},
            "step 'a': no agent offers skill 'astrology'",
        ),
        (
            {"steps": [{"id": "a", "call": {"skill": "echo", "inputs": {"x": "ghost.result"}}}]},
            "step 'a': it refers to step 'ghost'",
        ),
        (
            {
                "steps": [
                    {"id": "a", "call": {"skill": "echo", "inputs": {"x": "b.result"}}},
                    {"id": "b", "call": {"skill": "echo", "inputs": {"x": "a.result"}}},
                ]
            },
            "form a cycle",
        ),
        ({"steps": [{"id": "a", "pattern": "teleport"}]}, "unknown pattern"),
    ],
)
async def test_invalid_plans_are_rejected_naming_the_step(cluster: Cluster, plan: dict, named: str) -> None:
    task, _ = await cluster.ask("run my plan", data={"plan": plan})
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert named in status_text(task), status_text(task)


async def test_bad_requests_fail_with_a_clear_status(cluster: Cluster) -> None:
    task, _ = await cluster.ask("   ")
    assert task.status.state == TaskState.TASK_STATE_FAILED and "empty" in status_text(task)
    task, _ = await cluster.ask("x" * 20_001)
    assert task.status.state == TaskState.TASK_STATE_FAILED and "limit" in status_text(task)


def test_podium_ask_as_a_user_types_it(cluster: Cluster) -> None:
    url = cluster.orchestrator_url
    proc = Proc.podium("ask", "--url", url, "What is 15% of 240?")
    assert proc.proc.wait(120) == 0, proc.output()
    out = proc.output()
    assert (
        re.search(r"15% of 240 (=|is) 36\b", out)
        and "Plan (offline)" in out
        and "✓ compute completed by analyst" in out
    )
    proc.close()
    proc = Proc.podium("ask", "--url", url, "--json", "--quiet", "What is 2 + 3?")
    assert proc.proc.wait(120) == 0, proc.output()
    task = json.loads(proc.output())
    assert task["status"]["state"] == "TASK_STATE_COMPLETED" and re.search(
        r"(=|is) 5\b", task["artifacts"][0]["parts"][0]["text"]
    )
    proc.close()
    proc = Proc.podium("ask", "--url", f"http://127.0.0.1:{free_port()}", "hello")
    assert proc.proc.wait(60) == 3
    assert "cannot reach the orchestrator" in proc.output() and "Traceback" not in proc.output()
    proc.close()


def test_podium_trace_prints_the_timeline(cluster: Cluster) -> None:
    ask = Proc.podium("ask", "--url", cluster.orchestrator_url, "--json", "What is 3 * 4?")
    assert ask.proc.wait(120) == 0, ask.output()
    task_id = json.loads(ask.output()[ask.output().index("{") :])["id"]
    ask.close()
    for args in (
        ["--url", cluster.orchestrator_url],
        ["--redis-url", cluster.redis_url, "--namespace", cluster.namespace],
    ):
        trace = Proc.podium("trace", task_id, *args)
        assert trace.proc.wait(60) == 0, trace.output()
        out = trace.output()
        assert "plan 1 steps" in out and "handoff compute attempt 1 → analyst via redis-streams" in out
        assert re.search(r"compute\s+\+\s*\d+\.\d+s\s+\d+\.\d+s\s+completed analyst", out), out
        trace.close()
