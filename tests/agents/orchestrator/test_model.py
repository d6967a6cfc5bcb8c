"""Claude as planner and synthesiser, against the Messages API's real JSON shapes (httpx2.MockTransport):
a plan by tool use, an invalid plan sent back once with the validation error, fallbacks that say why,
and an answer that must keep the sources and the calculator's figures."""

from __future__ import annotations

from typing import Any

import pytest

from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.catalog import Catalog
from podium.agents.orchestrator.planning.model import PLAN_TOOL, ModelPlanner, model_answer, plan_schema
from podium.agents.orchestrator.planning.offline import OfflinePlanner
from podium.agents.orchestrator.state.trace import Trace, read_trace
from podium.agents.orchestrator.synth import Material, Section
from podium.bus.keys import Keys
from podium.registry.cards import load_card
from podium.registry.store import Registry
from tests.agents.test_llm_support import (
    MessagesAPI,
    anthropic_engine,
    error,
    message,
    text,
    tool_results,
    tool_use,
)

pytestmark = pytest.mark.anyio

GOOD = {
    "steps": [
        {"id": "research", "pattern": "task", "call": {"skill": "research"}, "gate": {"check": "covered"}},
        {
            "id": "answer",
            "pattern": "loop",
            "generator": {"skill": "write", "inputs": {"notes": "research.findings"}},
            "evaluator": {"skill": "review"},
        },
    ],
    "answer": ["answer"],
    "reason": "research, then a reviewed answer",
}
BAD = {"steps": [{"id": "research", "pattern": "task", "call": {"skill": "telepathy"}}]}


async def catalog(redis: Any, keys: Keys) -> Catalog:
    registry = Registry(redis, keys)
    for name in ("researcher", "analyst", "writer", "reviewer"):
        await registry.register(load_card(name), f"{name}-1", ttl=60)
    return await Catalog.load(registry, "orchestrator")


async def test_the_model_plans_by_tool_use_and_an_invalid_plan_goes_back_once(redis: Any, keys: Keys) -> None:
    api = MessagesAPI(
        message(tool_use("toolu_01", PLAN_TOOL, BAD), input_tokens=900, output_tokens=120),
        lambda body: message(tool_use("toolu_02", PLAN_TOOL, GOOD)),
    )
    trace = Trace(redis, keys, "task-1")
    spending = Spending(tokens=100_000)
    async with anthropic_engine(api) as engine:
        plan = await ModelPlanner(engine, OfflinePlanner()).plan(
            "How do generators work?", {}, await catalog(redis, keys), spending=spending, trace=trace
        )
    assert [s.id for s in plan.steps] == ["research", "answer"] and plan.planner == "claude-sonnet-5-5"
    first, second = api.requests
    assert first["tools"][0]["name"] == PLAN_TOOL and first["tools"][0]["input_schema"] == plan_schema()
    assert "research" in first["messages"][0]["content"][0]["text"]  # the skills were given
    [feedback] = tool_results(second)
    assert feedback["is_error"] and "no agent offers skill 'telepathy'" in feedback["content"]
    await trace.drain()
    entries = [e for e in await read_trace(redis, keys, "task-1") if e.event != "spend"]
    assert entries[0].state == "invalid" and "sending it back once" in entries[0].reason
    assert spending.used["tokens"] == 900 + 120 + 100 + 20


async def test_two_invalid_plans_fall_back_to_the_offline_planner(redis: Any, keys: Keys) -> None:
    api = MessagesAPI(message(tool_use("t1", PLAN_TOOL, BAD)), message(text("I would rather not plan.")))
    trace = Trace(redis, keys, "task-2")
    async with anthropic_engine(api) as engine:
        plan = await ModelPlanner(engine, OfflinePlanner()).plan(
            "What is 15% of 240?", {}, await catalog(redis, keys), spending=Spending(), trace=trace
        )
    assert plan.planner == "offline" and plan.steps[0].call.skill == "calculate"  # type: ignore[union-attr]
    await trace.drain()
    reasons = [e.reason for e in await read_trace(redis, keys, "task-2") if e.event != "spend"]
    assert "did not call submit_plan" in reasons[1] and "using the offline planner" in reasons[2]


async def test_a_model_that_fails_falls_back_and_says_so(redis: Any, keys: Keys) -> None:
    api = MessagesAPI(*[error(529, "overloaded_error", "Overloaded")] * 4)
    trace = Trace(redis, keys, "task-3")
    async with anthropic_engine(api) as engine:
        plan = await ModelPlanner(engine, OfflinePlanner()).plan(
            "What is 15% of 240?", {}, await catalog(redis, keys), spending=Spending(), trace=trace
        )
    assert plan.planner == "offline" and "the model failed" in plan.reason
    await trace.drain()
    assert (await read_trace(redis, keys, "task-3"))[-1].state == "fallback"


def material() -> Material:
    return Material(
        request="How do generators work, and what is 15% of 240?",
        sections=[
            Section("a", "generators", "Generators yield lazily [1]."),
            Section("c", "15% of 240", "15% of 240 = 36 [2].", figures=["36"]),
        ],
        sources=[
            {"marker": 1, "docId": "yield", "quote": "q"},
            {"marker": 2, "docId": "calc:evaluate", "quote": "0.15 * 240 = 36"},
        ],
    )


async def test_the_model_writes_the_answer_from_the_structured_results(redis: Any, keys: Keys) -> None:
    prose = "Generators produce values lazily, one at a time [1]. As for the sum, 15% of 240 is 36 [2]."
    api = MessagesAPI(message(text(prose)))
    async with anthropic_engine(api) as engine:
        answer = await model_answer(engine, material(), spending=Spending(), trace=Trace(redis, keys, "t4"))
    assert answer.synthesiser == "claude-sonnet-5-5" and answer.text.startswith(prose)
    assert "Sources:\n[1] yield" in answer.text
    sent = api.requests[0]["messages"][0]["content"][0]["text"]
    assert (
        '"figures": [\n    "36"' in sent and "calc:evaluate" in sent and api.requests[0].get("tools") is None
    )


@pytest.mark.parametrize(
    ("prose", "problem"),
    [
        ("Generators are lazy [1]. The figure is thirty-six [2].", "leaves out the calculated figures 36"),
        ("Generators are lazy [7]. 15% of 240 is 36 [2].", "cites sources that do not exist: 7"),
    ],
)
async def test_a_model_answer_that_breaks_a_rule_is_replaced_by_the_offline_one(
    redis: Any, keys: Keys, prose: str, problem: str
) -> None:
    api = MessagesAPI(message(text(prose)))
    async with anthropic_engine(api) as engine:
        answer = await model_answer(engine, material(), spending=Spending(), trace=Trace(redis, keys, "t5"))
    assert answer.synthesiser == "offline" and problem in answer.warnings[0]
    assert answer.text.startswith("Generators yield lazily [1].")
