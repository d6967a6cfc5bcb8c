"""The specialists' JSON spelling: camelCase in every data part they produce, and either spelling in what they
accept (data parts and blackboard notes), so notes written before the switch to camelCase still work."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from a2a.server.agent_execution import RequestContext
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import TaskArtifactUpdateEvent
from google.protobuf.json_format import MessageToDict
from pydantic.alias_generators import to_snake

from podium.agents.specialists.models import AnalysisOutput, ResearchOutput, ReviewOutput, WriterOutput
from podium.bus.connection import connect
from podium.bus.keys import Keys
from tests.agents.test_specialists_support import (
    VERBATIM,
    answer,
    assert_camel,
    rejection,
    request,
    specialist,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def board(monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str) -> str:
    """The in-process blackboard server reads REDIS_URL and PODIUM_NAMESPACE: point them at the test Redis."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("PODIUM_NAMESPACE", namespace)
    return namespace


QUESTION = "What does the with statement do, and how does a context manager define the runtime context?"
GOOD = (
    'The "with" statement wraps the execution of a block with methods defined by a context manager [1]. '
    "A context manager is an object that defines the runtime context to be established [2]."
)
WITH_QUOTE = 'The "with" statement is used to wrap the execution of a block'
CM_QUOTE = "A context manager is an object that defines the runtime context"


# Maps whose keys are data, not field names: the models keep them as they are in either spelling.
MAPS = VERBATIM | {"values"}


def snake(value: Any) -> Any:
    """``value`` with every field name in the snake_case spelling Podium wrote before."""
    if isinstance(value, dict):
        return {to_snake(k): (v if k in MAPS else snake(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value


def notes(spelling: str) -> list[dict[str, Any]]:
    key = "docId" if spelling == "camel" else "doc_id"
    return [
        {
            "text": 'The "with" statement wraps the execution of a block with methods defined by a context manager.',
            "citations": [{key: "with", "quote": WITH_QUOTE}],
        },
        {
            "text": "A context manager is an object that defines the runtime context to be established.",
            "citations": [{key: "context-managers", "quote": CM_QUOTE}],
        },
    ]


async def test_every_specialist_writes_camel_case_and_the_models_read_both_spellings() -> None:
    cases: list[tuple[str, str, dict[str, Any] | None, type[Any]]] = [
        ("researcher", "How does the with statement use a context manager?", None, ResearchOutput),
        ("analyst", "What is the monthly payment on a 200000 loan at 6% over 30 years?", None, AnalysisOutput),
        ("writer", "Write the answer", {"question": QUESTION, "notes": notes("camel")}, WriterOutput),
        ("reviewer", "Review this draft", {"question": QUESTION, "draft": GOOD + " By the same token 15% of 240 is 35 [1]."},
         ReviewOutput),
    ]  # fmt: skip
    for agent, text, data, model in cases:
        async with specialist(agent) as harness:
            out, _ = answer(await harness.ask(text, data))  # asserts camelCase at every depth
        assert {"taskId", "toolsCalled"} <= set(out), agent
        parsed = model.model_validate(out)
        assert parsed == model.model_validate(snake(out)), agent  # the old spelling reads the same
        assert parsed.task_id == out["taskId"] and parsed.tools_called == out["toolsCalled"]
        assert parsed.model_dump(mode="json") == out  # dumps are camelCase
        if agent == "analyst":
            assert {"totalPaid", "totalInterest", "payment"} <= set(out["values"])
            assert set(out["arguments"]) == {"principal", "annual_rate_percent", "years", "periods_per_year"}
        if agent == "writer":
            assert {"marker", "docId", "quote"} == set(out["sources"][0])
        if agent == "reviewer":
            assert any(f.get("found") == "35" for f in out["feedback"])

    async with specialist("researcher") as harness:
        refused = rejection(await harness.ask("What is 15% of 240?"))
    assert refused["suggestedAgent"] == "analyst" and "suggested_agent" not in refused


async def test_inputs_are_accepted_in_either_spelling() -> None:
    async with specialist("writer") as writer:
        camel, _ = answer(
            await writer.ask("Write", {"question": QUESTION, "notes": notes("camel"), "maxWords": 12})
        )
        old, _ = answer(
            await writer.ask("Write", {"question": QUESTION, "notes": notes("snake"), "max_words": 12})
        )
    assert camel["result"] == old["result"] and camel["sources"] == old["sources"]
    assert len(camel["result"].split("Sources:")[0].split()) < 20  # trimmed to the limit: one sentence left
    assert len(camel["sources"]) == 1 and camel["sources"][0]["quote"] in (WITH_QUOTE, CM_QUOTE)
    async with specialist("reviewer") as reviewer:
        for spelling in ("minWords", "min_words"):
            out, _ = answer(await reviewer.ask("Review", {"draft": GOOD, spelling: 100, "citations": [
                {"docId": "with", "quote": WITH_QUOTE}, {"doc_id": "context-managers", "quote": CM_QUOTE}]}))  # fmt: skip
            assert [f["check"] for f in out["feedback"]] == ["length"], spelling
            assert out["feedback"][0]["minWords"] == 100
            assert [c["docId"] for c in out["citations"]] == ["with", "context-managers"]
    async with specialist("researcher") as researcher:
        for spelling in ("maxSources", "max_sources"):
            out, _ = answer(
                await researcher.ask("How do generators and the yield expression work?", {spelling: 1})
            )
            assert len({c["docId"] for c in out["citations"]}) == 1, spelling


async def board_note(harness: Any, context: str, key: str, value: dict[str, Any]) -> None:
    written = await harness.tools.call(
        "blackboard__write", {"context_id": context, "key": key, "value": json.dumps(value), "author": "test"}
    )
    assert not written.is_error, written.text


async def test_blackboard_notes_in_the_old_spelling_still_feed_the_writer_and_the_reviewer(
    board: str,
) -> None:
    """Notes a researcher and a writer wrote before the switch (``doc_id``, ``task_id``) are read as before."""
    context = str(uuid.uuid4())
    researcher_note = {
        "agent": "researcher", "task_id": "t-old", "result": "...", "covered": True,
        "citations": [{"doc_id": "with", "quote": WITH_QUOTE}],
        "findings": [{"text": n["text"], "citations": n["citations"]} for n in notes("snake")],
    }  # fmt: skip
    async with specialist("writer") as writer:
        await board_note(writer, context, "findings-old", researcher_note)
        await board_note(
            writer,
            context,
            "findings-new",
            json.loads(json.dumps(researcher_note).replace("doc_id", "docId")),
        )
        for key in ("findings-old", "findings-new"):
            out, _ = answer(await writer.ask("Write it up", {"question": QUESTION, "blackboard": {"read": key}},
                                             context_id=context))  # fmt: skip
            assert [s["docId"] for s in out["sources"]] == ["with", "context-managers"], key
        writer_note = {"agent": "writer", "task_id": "t-w", "result": GOOD, "citations": researcher_note["citations"]
                       + [{"doc_id": "context-managers", "quote": CM_QUOTE}]}  # fmt: skip
        await board_note(writer, context, "draft-old", writer_note)
        await board_note(
            writer, context, "draft-new", json.loads(json.dumps(writer_note).replace("doc_id", "docId"))
        )
    async with specialist("reviewer") as reviewer:
        for key in ("draft-old", "draft-new"):
            out, _ = answer(await reviewer.ask("Review the draft", {"question": QUESTION, "blackboard": {"read": key}},
                                               context_id=context))  # fmt: skip
            assert out["verdict"] == "pass", (key, out["feedback"])
            assert [c["docId"] for c in out["citations"]] == ["with", "context-managers"], key


class Events:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def enqueue_event(self, event: Any) -> None:
        self.events.append(event)


async def test_an_append_only_rerun_recognises_its_note_in_either_spelling(
    board: str, redis_url: str
) -> None:
    """The reviewer appends at most once per task, also when the earlier run wrote ``task_id``."""
    context, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    data = {"question": QUESTION, "draft": GOOD, "blackboard": {"write": "review"}, "citations": [
        {"docId": "with", "quote": WITH_QUOTE}, {"docId": "context-managers", "quote": CM_QUOTE}]}  # fmt: skip
    old = json.dumps({"agent": "reviewer", "task_id": task_id, "verdict": "pass", "result": "ok"})
    async with specialist("writer") as writer:  # the writer may write: lay down the old run's note
        written = await writer.tools.call("blackboard__write", {"context_id": context, "key": "review",
                                                                "value": old + "\n", "author": "reviewer"})  # fmt: skip
        assert not written.is_error
    async with specialist("reviewer") as agent:
        queue = Events()
        ctx = RequestContext(
            ServerCallContext(), request("Review", data), task_id=task_id, context_id=context
        )
        await agent.handler.agent_executor.execute(ctx, queue)  # type: ignore[arg-type]
    [artifact] = [e.artifact for e in queue.events if isinstance(e, TaskArtifactUpdateEvent)]
    assert_camel(MessageToDict(artifact.parts[1].data))
    redis = connect(redis_url)
    try:
        note = json.loads(await redis.hget(Keys(board).blackboard(context), "review"))
    finally:
        await redis.aclose()
    assert note["value"].splitlines() == [old]  # not appended again


def test_the_guide_documents_the_camel_case_keys() -> None:
    from tests.docs import page

    section = page("specialists.md")
    quoted = set(re.findall(r'"([A-Za-z]+(?:_[A-Za-z]+)+)"', section))
    assert not quoted, f"snake_case JSON keys in docs/specialists.md: {sorted(quoted)}"
    for key in ("taskId", "toolsCalled", "docId", "suggestedAgent", "maxWords", "minWords", "maxSources"):
        assert f'"{key}"' in section, key
