"""Reading the caller's message into the run's :class:`~podium.agents.orchestrator.state.checkpoints.Request`:
its text, data part, budget (the tighter of the one sent and the one carried by the hop) and trace parent."""

from __future__ import annotations

from typing import Any

from a2a.server.agent_execution import RequestContext
from google.protobuf.json_format import MessageToDict

from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.delegate import BUDGET_METADATA_KEY
from podium.agents.orchestrator.errors import OrchestratorError
from podium.agents.orchestrator.state.checkpoints import Request
from podium.agents.orchestrator.workflows import explicit_text
from podium.bus.envelope import Budget

MAX_REQUEST_CHARS = 20_000
RESUME_KEY = "podium.resume"
TEXT_MODES = ("text/plain", "application/json")


class BadRequest(OrchestratorError):
    """The request cannot be orchestrated as sent (empty, too long, a part type not accepted)."""


def read_request(context: RequestContext, context_id: str) -> Request:
    """The request in ``context``'s message. Raises ``BadRequest`` naming what is wrong with it."""
    message = context.message
    assert message is not None
    texts: list[str] = []
    data: dict[str, Any] = {}
    for part in message.parts:
        kind = part.WhichOneof("content")
        if kind == "text":
            texts.append(part.text)
        elif kind == "data":
            value = MessageToDict(part.data)
            if isinstance(value, dict):
                data.update(value)
        else:
            raise BadRequest(
                f"the orchestrator accepts text and JSON data parts ({', '.join(TEXT_MODES)}), "
                f"not a {kind} part: send the content as text"
            )
    text = "\n".join(t for t in texts if t).strip() or str(data.get("question") or "").strip()
    if not text and "plan" not in data and "workflow" not in data:
        raise BadRequest("the request is empty: send a question or a task as a text part")
    if len(text) > MAX_REQUEST_CHARS:
        raise BadRequest(f"the request is {len(text)} characters; the limit is {MAX_REQUEST_CHARS}")
    raw_budget: Any = message_metadata(context).get(BUDGET_METADATA_KEY)
    carried = context.call_context.state.get("budget") if context.call_context else None
    try:
        budget = Spending.parse(raw_budget)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    if isinstance(carried, Budget):
        budget = carried if budget is None else _tighter(budget, carried)
    traceparent = context.call_context.state.get("traceparent") if context.call_context else None
    return Request(
        text=text
        or (explicit_text(str(data["workflow"])) if "workflow" in data else "(a plan given as data)"),
        data=data,
        context_id=context_id,
        budget=budget.model_dump(exclude_none=True) if budget else {},
        traceparent=traceparent,
    )


def message_metadata(context: RequestContext) -> dict[str, Any]:
    """The request's metadata and its message's, the message's winning."""
    message = context.message
    metadata = dict(context.metadata or {})
    if message is not None and message.HasField("metadata"):
        metadata.update(MessageToDict(message.metadata))
    return metadata


def _tighter(a: Budget, b: Budget) -> Budget:
    def low(x: Any, y: Any) -> Any:
        return y if x is None else x if y is None else min(x, y)

    return Budget(
        hops=low(a.hops, b.hops),
        tokens=low(a.tokens, b.tokens),
        deadline=low(a.deadline, b.deadline),
        spend=low(a.spend, b.spend),
    )
