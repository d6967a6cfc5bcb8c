"""The specialists with a model: a ScriptedEngine, and Claude's real Messages API shapes served by
httpx2.MockTransport, asking for tool_use of the mounted tools, which run on the real MCP servers.
What the model may call, what it may claim, and what happens when it fails."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from podium.agents.llm import EngineRequest, ScriptedEngine, ToolCall, ToolResultBlock, Usage
from tests.agents.test_llm_support import (
    MODEL,
    MessagesAPI,
    anthropic_engine,
    message,
    text,
    tool_results,
    tool_use,
)
from tests.agents.test_specialists_support import answer, rejection, specialist

pytestmark = pytest.mark.anyio

QUESTION = "What does the with statement do, and how does a context manager define the runtime context?"
SOURCES = [
    {"doc_id": "with", "quote": 'The "with" statement is used to wrap the execution of a block'},
    {
        "doc_id": "context-managers",
        "quote": "A context manager is an object that defines the runtime context",
    },
]
NOTES = [
    {"text": "The with statement wraps a block with a context manager's methods.", "citations": [SOURCES[0]]},
    {"text": "A context manager defines the runtime context of a with statement.", "citations": [SOURCES[1]]},
]
GOOD = (
    "The with statement wraps the execution of a block with methods defined by a context manager [1]. "
    "A context manager is an object that defines the runtime context to be established [2]."
)


def last_results(request: EngineRequest) -> list[ToolResultBlock]:
    return [b for b in request.messages[-1].content if isinstance(b, ToolResultBlock)]


async def test_researcher_tool_loop_calls_the_real_docs_server() -> None:
    def read_top_hit(request: EngineRequest) -> list[ToolCall]:
        [found] = last_results(request)
        hits = json.loads(found.text)["hits"]  # what the real docs server answered
        return [ToolCall("t2", "docs__read", {"id": hits[0]["id"]})]

    engine = ScriptedEngine([
        [ToolCall("t1", "docs__search", {"query": "with statement"})],
        read_top_hit,
        "- The with statement wraps a block in a context manager's methods [with]\n"
        "- Context managers were invented in 1970 [history-of-python]",
    ])  # fmt: skip
    async with specialist("researcher", engine=engine) as agent:
        data, _ = answer(await agent.ask(QUESTION))
    assert {s.name for s in engine.requests[0].tools} == {
        "docs__search",
        "docs__read",
    }  # no blackboard in the loop
    assert data["engine"] == "scripted" and data["toolsCalled"] == ["docs__search", "docs__read"]
    [finding] = data["findings"]
    [citation] = finding["citations"]
    assert citation["docId"] == "with" and "context manager" in citation["quote"]
    assert any("invented in 1970" in w for w in data["warnings"])  # a claim from no document it read


async def test_researcher_model_may_say_the_docs_do_not_cover_it() -> None:
    engine = ScriptedEngine([[ToolCall("t1", "docs__search", {"query": "weather paris"})], "NOT COVERED"])
    async with specialist("researcher", engine=engine) as agent:
        data, _ = answer(await agent.ask("What will the weather be in Paris tomorrow?"))
    assert data["covered"] is False and data["confidence"] == 0 and data["citations"] == []
    assert data["toolsCalled"] == ["docs__search"] and data["queries"] == ["weather paris"]


async def test_researcher_with_claude_over_the_messages_api() -> None:
    def read_it(body: dict[str, Any]) -> dict[str, Any]:
        [result] = tool_results(body)
        hit = json.loads(result["content"])["hits"][0]["id"]
        return message(tool_use("toolu_02", "docs__read", {"id": hit}))

    def answer_it(body: dict[str, Any]) -> dict[str, Any]:
        [result] = tool_results(body)
        assert json.loads(result["content"])["id"] == "with"
        return message(text("- The with statement wraps a block in methods of a context manager [with]"))

    api = MessagesAPI(
        message(tool_use("toolu_01", "docs__search", {"query": "with statement"})), read_it, answer_it
    )
    async with anthropic_engine(api) as engine, specialist("researcher", engine=engine) as agent:
        data, _ = answer(await agent.ask(QUESTION))
    assert data["engine"] == MODEL and data["covered"] is True
    assert [c["docId"] for c in data["citations"]] == ["with"]
    assert "cite" in api.requests[0]["system"].lower()
    assert {t["name"] for t in api.requests[0]["tools"]} == {"docs__search", "docs__read"}


async def test_analyst_with_claude_reports_the_calc_tools_figures() -> None:
    args = {"principal": 200_000, "annual_rate_percent": 6, "years": 30, "periods_per_year": 12}

    def final(body: dict[str, Any]) -> dict[str, Any]:
        [result] = tool_results(body)
        payment = json.loads(result["content"])["payment"]
        return message(text(f"The monthly payment is {payment} (calc__loan_payment)."))

    api = MessagesAPI(message(tool_use("toolu_01", "calc__loan_payment", args)), final)
    async with anthropic_engine(api) as engine, specialist("analyst", engine=engine) as agent:
        data, _ = answer(await agent.ask("What is the monthly payment on a 200000 loan at 6% over 30 years?"))
    r, n = 0.06 / 12, 360
    assert math.isclose(data["value"], 200_000 * r / (1 - (1 + r) ** -n), abs_tol=0.005)
    assert data["engine"] == MODEL and data["toolsCalled"] == ["calc__loan_payment"] and data["steps"]
    assert "1199.1" in data["result"]


async def test_engine_failure_falls_back_to_offline() -> None:
    engine = ScriptedEngine([])  # fails on its first call
    async with specialist("analyst", engine=engine) as agent:
        data, _ = answer(await agent.ask("What is 15% of 240?"))
    assert data["value"] == 36 and data["engine"] == "offline"
    assert any("answered offline" in w for w in data["warnings"])


async def test_misrouted_task_is_rejected_before_the_model_is_asked() -> None:
    engine = ScriptedEngine(["a poem"])
    async with specialist("analyst", engine=engine) as agent:
        no = rejection(await agent.ask("Write a poem about the sea"))
    assert engine.requests == [] and "creative" in no["reason"]


async def test_writer_with_engine_keeps_only_real_citations() -> None:
    engine = ScriptedEngine([
        "The with statement wraps a block with a context manager's methods [1]. "
        "A context manager defines the runtime context [2][7].",
        "A text that lost every citation.",
    ])  # fmt: skip
    async with specialist("writer", engine=engine) as agent:
        data, _ = answer(await agent.ask("Write it", {"question": QUESTION, "notes": NOTES}))
        lost, _ = answer(await agent.ask("Write it", {"question": QUESTION, "notes": NOTES}))
    assert "[7]" not in data["result"] and "[2]" in data["result"] and data["engine"] == "scripted"
    assert [s["docId"] for s in data["sources"]] == ["with", "context-managers"]
    assert any("made up" in w for w in data["warnings"])
    assert "[1]" in engine.requests[0].messages[0].text  # the model saw the numbered notes
    assert lost["engine"] == "offline" and "[1]" in lost["result"]


async def test_reviewer_model_adds_judgement_but_checks_decide_a_fail() -> None:
    engine = ScriptedEngine(["VERDICT: revise\n- Explain what __exit__ receives.", "VERDICT: pass"])
    async with specialist("reviewer", engine=engine) as agent:
        data = {"question": QUESTION, "citations": SOURCES}
        judged, _ = answer(await agent.ask("Review", {**data, "draft": GOOD}))
        uncited, _ = answer(
            await agent.ask("Review", {**data, "draft": GOOD + " It is the best feature of all languages."})
        )
    assert judged["verdict"] == "revise" and judged["engine"] == "scripted"
    assert [f["check"] for f in judged["feedback"]] == ["model"]
    assert uncited["verdict"] == "revise"  # the model said pass; the citation check still fails it
    assert {c["name"]: c["passed"] for c in uncited["checks"]} == {
        "citations": False, "coverage": True, "length": True, "numbers": True, "arithmetic": True,
        "form": True, "sides": True, "on_topic": True, "distinct": True, "model": True,
    }  # fmt: skip
    assert "Checks:" in engine.requests[0].messages[0].text


async def test_writer_revision_with_engine_lists_each_change() -> None:
    draft = "The with statement wraps a block [1]. It is the best feature."
    feedback = [{"check": "citations", "message": "“It is the best feature.” cites no source"}]
    engine = ScriptedEngine([
        "The with statement wraps a block with a context manager's methods [1].\n\n"
        "CHANGES:\n- “It is the best feature.” cites no source => removed the unsupported claim",
        "The with statement wraps a block [1].",
    ])  # fmt: skip
    data = {"question": QUESTION, "draft": draft, "citations": SOURCES, "notes": NOTES, "feedback": feedback}
    async with specialist("writer", engine=engine) as agent:
        revised, text = answer(await agent.ask("Revise", data))
        silent, _ = answer(await agent.ask("Revise", data))
    assert revised["revision"] and "best feature" not in revised["result"] and "Changes:" in text
    assert revised["changes"] == [
        {
            "feedback": "“It is the best feature.” cites no source",
            "change": "removed the unsupported claim",
            "addressed": True,
        }
    ]
    assert "Feedback:" in engine.requests[0].messages[0].text and "CHANGES:" in engine.requests[0].system
    assert [c["addressed"] for c in silent["changes"]] == [
        False
    ]  # the model said nothing: not claimed as done


async def test_a_request_budget_caps_the_model_loop_and_its_spend_is_reported() -> None:
    calls = [ToolCall("t1", "docs__search", {"query": "with statement"})]
    engine = ScriptedEngine([calls, "- never reached"], usage=Usage(5000, 500))
    async with specialist("researcher", engine=engine) as agent:
        # a first turn costs 5 500 tokens: the budget of 6 000 leaves no room for a second one
        data, _ = answer(await agent.ask(QUESTION, **{"podium.budget": {"tokens": 6000}}))
    assert len(engine.requests) == 1 and data["toolsCalled"] == []
    # priced as the table prices an unknown model: (5000 x $3 + 500 x $15) per million tokens
    assert data["usage"] == {
        "inputTokens": 5000,
        "outputTokens": 500,
        "spendUsd": 0.0225,
        "model": "scripted",
    }
    async with specialist(
        "researcher", engine=ScriptedEngine([calls, "NOT COVERED"], usage=Usage(5000, 500))
    ) as agent:
        data, _ = answer(await agent.ask(QUESTION))  # no budget: both turns run
    assert data["usage"] == {
        "inputTokens": 10000,
        "outputTokens": 1000,
        "spendUsd": 0.045,
        "model": "scripted",
    }


async def test_a_passed_deadline_stops_tool_calls() -> None:
    engine = ScriptedEngine([[ToolCall("t1", "docs__search", {"query": "with statement"})], "NOT COVERED"])
    async with specialist("researcher", engine=engine) as agent:
        await agent.ask(QUESTION, **{"podium.budget": {"deadline": 1.0}})  # long past
    [result] = last_results(engine.requests[1])
    assert result.is_error and "deadline has passed" in result.text


async def test_a_spend_budget_caps_the_model_loop_at_the_engines_price() -> None:
    for spend, calls in ((0.0001, 0), (1.0, 1)):  # $0.0001 buys 6 tokens at $15 per million: no call
        engine = ScriptedEngine(["- an answer"], usage=Usage(100, 10))
        async with specialist("researcher", engine=engine) as agent:
            answer(await agent.ask(QUESTION, **{"podium.budget": {"spend": spend}}))
        assert len(engine.requests) == calls, spend
