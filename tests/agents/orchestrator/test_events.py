"""The status events the orchestrator sends are the documented model: docs/events.md holds its JSON
schema and examples that validate; the run statuses and trace events are the names the code writes."""

from __future__ import annotations

import json

from podium.agents.orchestrator.approval import parse_decision
from podium.agents.orchestrator.events import RunStatus, StatusEvent, TraceEvent
from podium.agents.orchestrator.state.trace import TraceEntry
from tests.docs import blocks


def test_the_documented_schema_is_the_models() -> None:
    documented = json.loads(blocks("events.md", "## The schema", "json")[0])
    assert documented == StatusEvent.model_json_schema()


def test_the_documented_examples_are_status_events() -> None:
    for example in blocks("events.md", "## What an event says", "json"):
        event = StatusEvent.model_validate(json.loads(example))
        assert event.model_dump(by_alias=True, exclude_none=True) == json.loads(example)


def test_a_trace_entry_as_sent_is_a_status_event() -> None:
    entry = TraceEntry(event=TraceEvent.STEP, step="a", state="completed", agent="x", duration_ms=3.0)
    sent = json.loads(json.dumps(entry.dump()))
    assert sent["event"] == "step" and sent["durationMs"] == 3.0
    event = StatusEvent.model_validate(sent)
    assert (event.event, event.step, event.duration_ms) == ("step", "a", 3.0)


def test_run_statuses_say_when_a_run_has_ended() -> None:
    assert [s for s in RunStatus if s.ended] == [RunStatus.DONE, RunStatus.FAILED]
    assert RunStatus("waiting-approval") is RunStatus.WAITING_APPROVAL


def test_decisions_read_from_text_and_data_are_decision_shapes() -> None:
    from a2a.helpers.proto_helpers import new_data_part, new_text_message
    from a2a.server.agent_execution import RequestContext
    from a2a.server.context import ServerCallContext
    from a2a.types.a2a_pb2 import Role, SendMessageRequest

    def context(text: str, data: dict[str, object] | None = None) -> RequestContext:
        message = new_text_message(text, role=Role.ROLE_USER)
        if data is not None:
            message.parts.append(new_data_part(data))
        return RequestContext(ServerCallContext(), request=SendMessageRequest(message=message))

    assert parse_decision(context("yes please")) == {"decision": "approve"}
    assert parse_decision(context("edit: only the summary")) == {
        "decision": "edit",
        "instruction": "only the summary",
    }
    assert parse_decision(context("", {"decision": "reject"})) == {"decision": "reject"}
    assert parse_decision(context("", {"decision": "edit"})) is None
    assert parse_decision(context("what?")) is None
