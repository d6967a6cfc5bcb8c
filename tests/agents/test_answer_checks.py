"""The reviewer's checks that an answer answers what was asked (form, sides, on_topic, distinct), each on
drafts that pass and fail it, through the real reviewer agent; and the writer's revision acting on each
check's feedback so the next review passes. Removing a check from the reviewer turns its test red."""

from __future__ import annotations

from typing import Any

import pytest

from podium.agents.specialists import answer_checks
from podium.agents.text import drafts
from tests.agents.test_specialists_support import answer, specialist

pytestmark = pytest.mark.anyio

TRY = 'The "try" statement specifies exception handlers and/or cleanup code for a group of statements.'
WITH = (
    'The "with" statement is used to wrap the execution of a block with methods defined by a context manager.'
)
ASYNC_WITH = "An asynchronous context manager is a context manager that is able to suspend execution in its enter and exit methods."
ASYNC_FOR = 'An "async for" statement allows convenient iteration over asynchronous iterables.'
SOURCES = [
    {"doc_id": "try", "quote": TRY},
    {"doc_id": "with", "quote": WITH},
    {"doc_id": "async", "quote": ASYNC_WITH},
    {"doc_id": "async", "quote": ASYNC_FOR},
]


async def review(draft: str, question: str, citations: list[dict[str, str]] = SOURCES) -> dict[str, Any]:
    async with specialist("reviewer") as agent:
        data, _ = answer(
            await agent.ask(
                "Review this draft", {"question": question, "draft": draft, "citations": citations}
            )
        )
    return data


def failed(data: dict[str, Any]) -> dict[str, bool]:
    return {c["name"]: c["passed"] for c in data["checks"]}


async def revise(draft: str, feedback: list[dict[str, Any]], question: str) -> str:
    notes = [{"text": s["quote"], "citations": [s]} for s in SOURCES]
    async with specialist("writer") as agent:
        data, _ = answer(
            await agent.ask(
                question,
                {
                    "draft": draft,
                    "feedback": feedback,
                    "citations": SOURCES,
                    "notes": notes,
                    "question": question,
                },
            )
        )
    assert all(c["addressed"] for c in data["changes"]), data["changes"]
    return str(data["result"])


async def test_form_the_length_asked_is_kept() -> None:
    question = "Summarize what the 'async with' statement is for, in one sentence."
    long = f"{ASYNC_WITH[:-1]} [3]. {WITH[:-1]} [2]."
    data = await review(long, question)
    assert data["verdict"] == "revise" and failed(data)["form"] is False
    [item] = [f for f in data["feedback"] if f["check"] == "form"]
    assert "at most 1 sentence" in item["message"] and item["expected"] == "1"
    fixed = await revise(long, data["feedback"], question)
    assert failed(await review(fixed, question))["form"] is True
    assert fixed.startswith("An asynchronous context manager")  # the first, answering sentence is kept
    assert failed(await review(f"{ASYNC_WITH[:-1]} [3].", question))["form"] is True


async def test_form_a_list_is_a_list() -> None:
    question = "List what the try and with statements do."
    prose = f"{TRY[:-1]} [1]. {WITH[:-1]} [2]."
    data = await review(prose, question)
    assert failed(data)["form"] is False
    fixed = await revise(prose, data["feedback"], question)
    assert fixed.startswith("- The") and failed(await review(fixed, question))["form"] is True


async def test_sides_a_comparison_covers_both_things() -> None:
    question = "Compare the try statement and the with statement."
    one_sided = f"{TRY[:-1]} [1]."
    data = await review(one_sided, question)
    assert failed(data)["sides"] is False
    [item] = [f for f in data["feedback"] if f["check"] == "sides"]
    assert item["terms"] == ["with"] and "says nothing about with" in item["message"]
    fixed = await revise(one_sided, data["feedback"], question)
    assert "context manager" in fixed and failed(await review(fixed, question))["sides"] is True


async def test_on_topic_no_passage_about_a_neighbouring_topic() -> None:
    question = "What is the 'async with' statement for?"
    drifting = f"{ASYNC_WITH[:-1]} [3]. {ASYNC_FOR[:-1]} [4]."
    data = await review(drifting, question)
    assert failed(data)["on_topic"] is False
    [item] = [f for f in data["feedback"] if f["check"] == "on_topic"]
    assert item["terms"] == ["async for"] and item["sentence"].startswith('An "async for"')
    fixed = await revise(drifting, data["feedback"], question)
    assert (
        "async for" not in fixed.split("Sources:")[0]
        and failed(await review(fixed, question))["on_topic"] is True
    )


def test_on_topic_an_answer_must_name_what_was_asked() -> None:
    draft = drafts.parse(f"{TRY[:-1]} [1].\n\nSources:\n[1] try — “{TRY}”")
    outcome = answer_checks.on_topic(draft, "What does the global statement do?")
    assert not outcome.check.passed and "asks about global" in outcome.feedback[0].message
    assert answer_checks.on_topic(draft, "What does the try statement do?").check.passed


async def test_distinct_a_sentence_is_cited_once() -> None:
    question = "What does the with statement do?"
    twice = f"{WITH[:-1]} [1][2]."
    sources = [{"doc_id": "with", "quote": WITH}, {"doc_id": "compound", "quote": WITH}]
    data = await review(twice, question, sources)
    assert failed(data)["distinct"] is False
    [item] = [f for f in data["feedback"] if f["check"] == "distinct"]
    assert "sources [1] and [2] quote the same sentence" in item["message"]
    repeated = f"{WITH[:-1]} [1]. {WITH[:-1]} [1]."
    assert failed(await review(repeated, question, sources))["distinct"] is False
    assert failed(await review(f"{WITH[:-1]} [1].", question, sources))["distinct"] is True
