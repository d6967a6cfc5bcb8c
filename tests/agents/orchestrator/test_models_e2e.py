"""A model per agent, and spend counted across hops, with real processes: an orchestrator whose planner
and synthesiser name different models in its config, and a researcher with a model of its own, all
against one fake OpenAI-compatible server that records which model each request named. The spend of
every call (priced per config) is charged to the one budget that travels with the request, reported
in the answer, the trace and `podium trace`."""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import GetTaskRequest, Role, SendMessageRequest, TaskState

from podium.agents.orchestrator.planning.model import PLAN_TOOL
from tests.agents.openai_fake import FakeOpenAI, Turn, serve
from tests.agents.orchestrator.cluster import Cluster, answer_of
from tests.agents.test_specialists_openai_e2e import model_turn
from tests.support import ROOT

pytestmark = pytest.mark.anyio

PLAN = {"steps": [{"id": "research", "pattern": "task", "call": {"skill": "research"}}], "answer": ["research"],
        "reason": "one research step"}  # fmt: skip
PRICES = {"planner": (1.0, 2.0), "researcher": (2.0, 4.0), "synthesis": (10.0, 20.0)}


def model(body: dict[str, Any]) -> Turn:
    """The fake server's models, by the name each request gives."""
    if body["model"] == "planner-small":
        return Turn(tool_calls=[("call_plan", PLAN_TOOL, PLAN)], usage=(900, 60))
    if body["model"] == "research-mid":
        return model_turn(body)
    assert body["model"] == "synth-large", body["model"]
    material = json.loads(body["messages"][-1]["content"])
    marker = f" [{material['sources'][0]['marker']}]" if material["sources"] else ""
    return Turn(text=f"The with statement runs a block inside a context manager{marker}.", usage=(1200, 80))


def price(who: str) -> dict[str, float]:
    return {"input": PRICES[who][0], "output": PRICES[who][1]}


@pytest.fixture
def cluster(redis_server: Any) -> Iterator[tuple[Cluster, FakeOpenAI]]:
    with tempfile.TemporaryDirectory() as home, serve(FakeOpenAI(model)) as fake:
        c = Cluster(redis_server.url, f"t{uuid.uuid4().hex[:12]}", Path(home))
        orchestrator = json.loads((c.configs / "orchestrator.json").read_text())
        orchestrator["llm"] = {"model": "default-model",
                               "planner": {"model": "planner-small", "price": price("planner")},
                               "synthesis": {"model": "synth-large", "price": price("synthesis")}}  # fmt: skip
        (c.configs / "orchestrator.json").write_text(json.dumps(orchestrator))
        researcher = json.loads((c.configs / "researcher.json").read_text())
        researcher["llm"] = {"model": "research-mid", "price": price("researcher")}
        (c.configs / "researcher.json").write_text(json.dumps(researcher))
        c.env |= {"OPENAI_BASE_URL": fake.url, "PODIUM_MODEL": "env-default-model"}
        try:
            c.start("researcher", "orchestrator")
            yield c, fake
        finally:
            c.close()


def cost(who: str, tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * PRICES[who][0] + tokens_out * PRICES[who][1]) / 1e6


async def test_planner_and_synthesiser_use_their_own_models_and_every_hops_spend_is_counted(
    cluster: tuple[Cluster, FakeOpenAI],
) -> None:
    c, fake = cluster
    message = new_text_message("What does the with statement do?", role=Role.ROLE_USER)
    message.metadata.update({"podium.budget": {"spend": 0.02}})
    async with c.client() as client:
        events = [e async for e in client.send_message(SendMessageRequest(message=message))]
        task = await client.get_task(GetTaskRequest(id=events[0].task.id))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, task.status
    text, data = answer_of(task)
    assert data["planner"] == "planner-small" and data["synthesiser"] == "synth-large"
    assert "context manager" in text
    # each request named the model of the part that made it; none fell back to PODIUM_MODEL
    assert fake.requested_models == [
        "planner-small",
        "research-mid",
        "research-mid",
        "research-mid",
        "synth-large",
    ]
    assert (
        PLAN_TOOL in {t["function"]["name"] for t in fake.bodies[0]["tools"]}
        and "tools" not in fake.bodies[-1]
    )

    planner, researcher, synthesis = (
        cost("planner", 900, 60),
        cost("researcher", 2600, 95),
        cost("synthesis", 1200, 80),
    )
    usage = data["usage"]
    assert usage["by"]["planner"] == {
        "inputTokens": 900,
        "outputTokens": 60,
        "spendUsd": pytest.approx(planner),
    }
    assert usage["by"]["researcher"] == {"inputTokens": 2600, "outputTokens": 95,
                                         "spendUsd": pytest.approx(researcher)}  # fmt: skip
    assert usage["by"]["synthesis"]["spendUsd"] == pytest.approx(synthesis)
    assert usage["spendUsd"] == pytest.approx(planner + researcher + synthesis, abs=1e-6)
    assert usage["tokens"] == 900 + 60 + 2600 + 95 + 1200 + 80
    # the budget that reached the researcher was what the planner left: $0.02 less its call, which
    # buys (0.05 - planner) / $4 per million output tokens; its first turn could ask for no more
    assert fake.bodies[1]["max_tokens"] <= int((0.02 - planner) / 4.0 * 1e6) < 8192

    entries = await c.trace(task.id)
    spends = {(e.state, e.agent): e for e in entries if e.event == "spend"}
    assert {"planner", "agent", "synthesis", "total"} == {state for state, _ in spends}
    assert spends[("agent", "researcher")].data["model"] == "research-mid"
    total = spends[("total", None)]
    assert f"${planner + researcher + synthesis:.4f}" in total.reason and "researcher $" in total.reason

    cmd = [sys.executable, "-m", "podium.agents.cli", "trace", task.id, "--redis-url", c.redis_url,
           "--namespace", c.namespace]  # fmt: skip
    done = await anyio.run_process(cmd, check=False, cwd=ROOT)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    assert "spend planner → planner-small" in out and "spend total" in out and "on research-mid" in out
