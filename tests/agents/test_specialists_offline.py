"""Each specialist offline, in process: its executor behind a real DefaultRequestHandler, its real MCP
servers mounted in memory with the configured allowlists. Known answers, kept citations, review checks,
revisions, rejections with reasons, the blackboard, and idempotent re-runs of one task."""

from __future__ import annotations

import json
import math
import statistics
import uuid
from typing import Any

import pytest
from a2a.server.agent_execution import RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore
from a2a.types.a2a_pb2 import Task, TaskArtifactUpdateEvent, TaskState

from podium.agents.host.context import AgentContext
from podium.agents.host.executors import load_executor
from podium.agents.host.tools import ToolResult, ToolSpec
from podium.agents.specialists.researcher import search_queries
from podium.agents.text import quantities
from podium.bus.connection import connect
from podium.bus.keys import Keys
from podium.registry.cards import load_card
from tests.agents.test_specialists_support import answer, rejection, request, specialist

pytestmark = pytest.mark.anyio

WITH = "What does the Python language reference say about the with statement? Cite the sections."
NOTES = [
    {
        "text": 'The "with" statement wraps the execution of a block with methods defined by a context manager.',
        "citations": [
            {"doc_id": "with", "quote": 'The "with" statement is used to wrap the execution of a block'}
        ],
    },
    {
        "text": "A context manager is an object that defines the runtime context to be established.",
        "citations": ["context-managers"],
    },
    {
        "text": "The context manager's __exit__() method is invoked when the suite is left, even by an exception.",
        "citations": [{"doc_id": "with", "quote": 'The context manager\'s "__exit__()" method is invoked.'}],
    },
]
SOURCES = [
    {"doc_id": "with", "quote": 'The "with" statement is used to wrap the execution of a block'},
    {
        "doc_id": "context-managers",
        "quote": "A context manager is an object that defines the runtime context",
    },
]
QUESTION = "What does the with statement do, and how does a context manager define the runtime context?"
GOOD = (
    'The "with" statement wraps the execution of a block with methods defined by a context manager [1]. '
    "A context manager is an object that defines the runtime context to be established [2]."
)
UNCITED = "It was added in Python 2.5 and makes every program shorter and safer."


def squash(text: str) -> str:
    return " ".join(text.split())


# -- researcher ------------------------------------------------------------------------------------


async def test_researcher_cites_the_with_topic_with_real_quotes() -> None:
    async with specialist("researcher") as agent:
        data, text = answer(await agent.ask(WITH))
        page = await agent.tools.call("docs__read", {"id": "with", "length": 20_000})
    assert data["covered"] is True and data["queries"] == ["with statement"]
    assert data["citations"] and {c["docId"] for c in data["citations"]} == {"with"}
    for citation in data["citations"]:
        assert squash(citation["quote"]) in squash(page.data["text"])  # a real quote, word for word
    assert all(f["citations"] for f in data["findings"])
    assert data["toolsCalled"] == ["docs__search", "docs__read"]
    assert 0.5 < data["confidence"] <= 1
    assert "Sources:" in text and "with:" in text


async def test_researcher_says_when_the_docs_do_not_cover_a_question() -> None:
    async with specialist("researcher") as agent:
        data, _ = answer(await agent.ask("What will the weather be like in Paris tomorrow?"))
    assert data["covered"] is False and data["confidence"] == 0
    assert data["citations"] == [] and "does not cover" in data["result"]


def test_researcher_queries_drop_stopwords_and_filler() -> None:
    queries = search_queries("How do the generators and iterators of Python differ from lists?")
    assert queries == ["generators iterators differ lists", "generators iterators", "differ lists"]


# -- analyst ---------------------------------------------------------------------------------------


def loan(principal: float, rate: float, years: int) -> float:
    r, n = rate / 100 / 12, years * 12
    return principal * r / (1 - (1 + r) ** -n)


KNOWN = [
    ("What is 15% of 240?", "percentage", 36),
    ("What is (17.5 + 4) * 3?", "arithmetic", 64.5),
    ("What is 12 times 7 plus 1?", "arithmetic", 85),
    ("What is the average of 3, 5, 8?", "statistics", 16 / 3),
    ("Median of 3, 5, 8, 10", "statistics", 6.5),
    ("stdev of 2, 4, 4, 4, 5, 5, 7, 9", "statistics", statistics.stdev([2, 4, 4, 4, 5, 5, 7, 9])),
    ("Compound growth of 1000 at 5% for 10 years", "growth", round(1000 * 1.05**10, 2)),
    ("What is the monthly payment on a 200000 loan at 6% over 30 years?", "loan", loan(200_000, 6, 30)),
    ("Monthly payment on a $250,000 mortgage at 4.2% over 30 years", "loan", loan(250_000, 4.2, 30)),
    ("What is the percentage change from 80 to 100?", "percent_change", 25),
]


async def test_analyst_known_answers() -> None:
    async with specialist("analyst") as agent:
        for question, operation, expected in KNOWN:
            data, text = answer(await agent.ask(question))
            assert data["operation"] == operation, question
            assert math.isclose(data["value"], expected, abs_tol=0.005), (question, data["value"], expected)
            assert data["steps"] and data["toolsCalled"] == [data["tool"]] and data["confidence"] == 1
            assert "Steps" in text


async def test_analyst_rejects_tasks_with_nothing_to_compute() -> None:
    async with specialist("analyst") as agent:
        poem = rejection(await agent.ask("Write a poem about the sea"))
        question = rejection(await agent.ask("How do context managers work?"))
        broken = rejection(await agent.ask("What is 1 / 0?"))
    assert "creative" in poem["reason"] and poem["suggestedAgent"] is None
    assert "nothing to compute" in question["reason"] and question["suggestedAgent"] == "researcher"
    assert "division by zero" in broken["reason"]


def test_quantities_leave_prose_alone() -> None:
    for text in (
        "How do context managers work?",
        "Python 3.11 - what is new?",
        "In 2023 there were 5 releases",
    ):
        assert quantities.find(text) is None, text


# -- writer ----------------------------------------------------------------------------------------


async def test_writer_keeps_every_citation() -> None:
    async with specialist("writer") as agent:
        data, text = answer(await agent.ask("Write the answer", {"question": QUESTION, "notes": NOTES}))
    assert {s["docId"] for s in data["sources"]} == {"with", "context-managers"}
    body = data["result"].split("Sources:")[0]
    assert "[1]" in body and "[2]" in body and "Sources:" in data["result"]
    assert data["sources"][0]["quote"] == NOTES[0]["citations"][0]["quote"]
    assert data["confidence"] == 0.9 and not data["revision"] and data["warnings"] == []
    assert text == data["result"]


async def test_writer_takes_notes_from_text_lines() -> None:
    notes = "Write an answer from these findings:\n- The with statement wraps a block [with]\n- Managers define __enter__ [context-managers]"
    async with specialist("writer") as agent:
        data, _ = answer(await agent.ask(notes))
    assert [s["docId"] for s in data["sources"]] == ["with", "context-managers"]


async def test_writer_revision_addresses_each_point() -> None:
    draft = f"The with statement wraps a block with methods defined by a context manager [1]. {UNCITED} The payment is 1250 [1]."
    feedback = [
        {"check": "citations", "message": "uncited claim", "sentence": UNCITED},
        {"check": "coverage", "message": "never mentions exit or exception", "terms": ["exit", "exception"]},
        {"check": "numbers", "message": "wrong payment", "found": "1250", "expected": "1199.10"},
        "Make the tone friendlier.",
    ]
    async with specialist("writer") as agent:
        data, text = answer(await agent.ask("Revise this draft", {
            "question": QUESTION, "draft": draft, "citations": SOURCES, "notes": NOTES, "feedback": feedback,
        }))  # fmt: skip
    assert data["revision"] is True and data["skill"] == "revise"
    assert [c["addressed"] for c in data["changes"]] == [True, True, True, False]
    assert UNCITED not in data["result"] and "removed" in data["changes"][0]["change"]
    assert "__exit__()" in data["result"] and "1199.10" in data["result"] and "1250" not in data["result"]
    assert "Changes:" in text


async def test_writer_rejects_what_it_cannot_write() -> None:
    async with specialist("writer") as agent:
        poem = rejection(await agent.ask("Write a poem about context managers"))
        bare = rejection(await agent.ask("How do context managers work?"))
        draft_only = rejection(await agent.ask("Look at this", {"draft": GOOD, "notes": NOTES}))
    assert "creative" in poem["reason"]
    assert bare["suggestedAgent"] == "researcher" and "nothing to write from" in bare["reason"]
    assert draft_only["suggestedAgent"] == "reviewer"


# -- reviewer --------------------------------------------------------------------------------------


async def review(draft: str, **extra: Any) -> dict[str, Any]:
    async with specialist("reviewer") as agent:
        data, _ = answer(
            await agent.ask(
                "Review this draft", {"question": QUESTION, "draft": draft, "citations": SOURCES, **extra}
            )
        )
    return data


async def test_reviewer_fails_an_uncited_claim_and_passes_the_fixed_draft() -> None:
    failed = await review(f"{GOOD} {UNCITED}")
    assert failed["verdict"] == "revise" and failed["confidence"] >= 0.9
    [item] = failed["feedback"]
    assert item["check"] == "citations" and item["sentence"] == UNCITED
    assert {c["name"]: c["passed"] for c in failed["checks"]}["citations"] is False

    passed = await review(GOOD)
    assert passed["verdict"] == "pass" and passed["feedback"] == []
    assert all(c["passed"] for c in passed["checks"]) and passed["engine"] == "offline"


async def test_reviewer_checks_coverage_length_numbers_and_arithmetic() -> None:
    part = await review(
        GOOD, question="What does the with statement do, and what does a yield expression return?"
    )
    [gap] = part["feedback"]
    assert gap["check"] == "coverage" and gap["terms"] == ["yield", "expression", "return"]

    short = await review(GOOD, min_words=100)
    assert [f["check"] for f in short["feedback"]] == ["length"] and short["feedback"][0]["minWords"] == 100

    numbers = "The monthly payment is 1199.10 [1]. For that loan the monthly payment is 1250 [2]."
    quotes = [{"doc_id": "calc:loan_payment", "quote": "payment = 1199.10"}, SOURCES[1]]
    data = await review(f"{GOOD} {numbers}", citations=quotes, question="")
    [item] = [f for f in data["feedback"] if f["check"] == "numbers"]
    assert item["expected"] == "1199.10" and item["found"] == "1250"

    scenarios = "At 5% the monthly payment is 1073.64 [1]; at 6% the monthly payment is 1199.10 [1]."
    assert {c["name"]: c["passed"] for c in (await review(f"{GOOD} {scenarios}"))["checks"]}[
        "numbers"
    ] is True

    sums = await review(f"{GOOD} By the same token 15% of 240 is 35 [1].")
    [wrong] = sums["feedback"]
    assert (
        wrong["check"] == "arithmetic"
        and wrong["expected"] == "36"
        and "calc__evaluate" in sums["toolsCalled"]
    )


async def test_reviewer_rejects_when_there_is_no_draft() -> None:
    async with specialist("reviewer") as agent:
        empty = rejection(await agent.ask("Please review my draft"))
        other = rejection(await agent.ask("What is 15% of 240?"))
    assert "no draft" in empty["reason"] and other["suggestedAgent"] == "analyst"


async def test_input_that_does_not_fit_the_shape_is_rejected_naming_the_field() -> None:
    async with specialist("writer") as agent:
        bad = rejection(await agent.ask("Write it", {"notes": [{"citations": ["with"]}]}))
    assert "notes.0.text" in bad["reason"]


# -- blackboard and idempotency --------------------------------------------------------------------


class Events:
    """An event queue that keeps what the executor enqueues."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def enqueue_event(self, event: Any) -> None:
        self.events.append(event)


async def test_blackboard_and_a_rerun_of_the_same_task(monkeypatch, redis_url: str, namespace: str) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("PODIUM_NAMESPACE", namespace)
    context, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    data = {"question": QUESTION, "draft": GOOD, "citations": SOURCES, "blackboard": {"write": "review"}}
    async with specialist("reviewer") as agent:
        executor = agent.handler.agent_executor
        runs = []
        for _ in range(2):  # the bus may deliver a task twice: the second run must change nothing
            queue = Events()
            ctx = RequestContext(
                ServerCallContext(), request("Review", data), task_id=task_id, context_id=context
            )
            await executor.execute(ctx, queue)  # type: ignore[arg-type]
            runs.append([e for e in queue.events if isinstance(e, TaskArtifactUpdateEvent)])
    assert [r[0].artifact.artifact_id for r in runs] == [f"{task_id}-reviewer"] * 2
    redis = connect(redis_url)
    try:
        note = json.loads(await redis.hget(Keys(namespace).blackboard(context), "review"))
    finally:
        await redis.aclose()
    lines = note["value"].splitlines()
    assert len(lines) == 1 and note["version"] == 1  # the reviewer may only append: once per task
    assert json.loads(lines[0])["taskId"] == task_id and json.loads(lines[0])["verdict"] == "pass"


async def test_blackboard_read_feeds_the_writer(monkeypatch, redis_url: str, namespace: str) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("PODIUM_NAMESPACE", namespace)
    context = str(uuid.uuid4())
    async with specialist("researcher") as researcher:
        found, _ = answer(await researcher.ask(WITH, context_id=context, blackboard={"write": "findings"}))
    async with specialist("writer") as writer:
        task = await writer.ask(
            "Write it up", {"blackboard": {"read": "findings", "write": "draft"}}, context_id=context
        )
        data, _ = answer(task)
        missing = await writer.ask(
            "Write it up", {"blackboard": {"read": "nothing-here"}}, context_id=context
        )
    assert found["toolsCalled"][-1] == "blackboard__write"
    assert data["toolsCalled"] == ["blackboard__read", "blackboard__write"]
    assert {s["docId"] for s in data["sources"]} == {"with"}
    no = rejection(missing)
    assert no["suggestedAgent"] == "researcher" and "nothing-here" in no["warnings"][0]


class DeadDocs:
    """The docs tools of a server that stopped answering, as MountedTools reports it."""

    def specs(self) -> list[ToolSpec]:
        return [
            ToolSpec("docs__search", "search", {"type": "object"}),
            ToolSpec("docs__read", "read", {"type": "object"}),
        ]

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        return ToolResult(text=f"{name}: server unavailable: connection closed", is_error=True)


async def test_researcher_fails_rather_than_answers_when_the_docs_server_is_down() -> None:
    card = load_card("researcher")
    ctx = AgentContext(name="researcher", card=card, redis=None, keys=Keys("unused"), tools=DeadDocs())
    handler = DefaultRequestHandler(load_executor(ctx), InMemoryTaskStore(), card)
    try:
        task = await handler.on_message_send(request(WITH), ServerCallContext())
    finally:
        await handler.aclose()
    assert isinstance(task, Task) and task.status.state == TaskState.TASK_STATE_FAILED
    assert "server unavailable" in task.status.message.parts[0].text and not task.artifacts


# -- details ---------------------------------------------------------------------------------------


async def test_writer_keeps_two_quotes_from_one_document_as_two_sources() -> None:
    first, second = (
        'The "with" statement is used to wrap the execution of a block',
        ("The context manager’s __exit__() method is invoked."),
    )
    notes = [
        {
            "text": "The with statement wraps the execution of a block.",
            "citations": [{"docId": "with", "quote": first}],
        },
        {
            "text": "When the block is left, __exit__() is invoked.",
            "citations": [{"docId": "with", "quote": second}],
        },
        {
            "text": "Its block runs inside the managed context.",
            "citations": ["with"],
        },  # no quote: the first source
    ]
    async with specialist("writer") as agent:
        data, _ = answer(await agent.ask("Write the answer", {"question": QUESTION, "notes": notes}))
    assert [(s["marker"], s["docId"], s["quote"]) for s in data["sources"]] == [
        (1, "with", first),
        (2, "with", second),
    ]
    body = data["result"].split("Sources:")[0]
    assert "a block [1]." in body and "invoked [2]." in body and "context [1]." in body


async def test_reviewer_reports_a_number_without_the_punctuation_after_it() -> None:
    numbers = (
        "The monthly payment is 1,199.10 [1]. For that loan the monthly payment is 40, which is less [2]."
    )
    quotes = [{"docId": "calc:loan_payment", "quote": "payment = 1,199.10"}, SOURCES[1]]
    data = await review(f"{GOOD} {numbers}", citations=quotes, question="")
    [item] = [f for f in data["feedback"] if f["check"] == "numbers"]
    assert (item["expected"], item["found"]) == ("1,199.10", "40")
    assert "both 1,199.10 and 40:" in item["message"]


async def test_analyst_says_one_year_not_one_years() -> None:
    async with specialist("analyst") as agent:
        loan_one, _ = answer(await agent.ask("Monthly payment on a 12,000 loan at 5% over 12 months"))
        growth_one, _ = answer(await agent.ask("Compound growth of 1000 at 5% for 1 year"))
        loan_two, _ = answer(await agent.ask("Monthly payment on a 12,000 loan at 5% over 2 years"))
    assert "over 1 year is" in loan_one["result"] and "1 years" not in loan_one["result"]
    assert "for 1 year gives" in growth_one["result"]
    assert "over 2 years is" in loan_two["result"]
