"""Human approval: what the caller is asked before a step runs, and how their answer is read.

A step whose skill is tagged as needing approval (or a plan over the cost limit) pauses the task in
``input-required`` with one ask per step; the caller answers on the same task with text
(``approve``, ``reject``, ``edit: <new instruction>``) or a data part ``{"decision": …}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from a2a.server.agent_execution import RequestContext
from google.protobuf.json_format import MessageToDict

from podium.agents.orchestrator import patterns
from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.catalog import Catalog
from podium.agents.orchestrator.events import Ask, Decision, DecisionName
from podium.agents.orchestrator.plan import Plan
from podium.agents.orchestrator.settings import ApprovalSettings


def approval_reason(settings: ApprovalSettings, catalog: Catalog) -> Callable[[Any], str | None]:
    """Why a step must wait for the caller's approval (None when it need not): the plan marks it, or
    a skill it calls carries one of ``settings.tags``."""
    tags = {t.lower() for t in settings.tags}

    def reason(step: Any) -> str | None:
        if step.needs_approval:
            return "the plan marks this step as needing approval"
        for call in step.calls():
            skill = catalog.skill(call.skill)
            if skill is not None and tags & {t.lower() for t in skill.tags}:
                return f"skill {call.skill!r} is tagged as needing approval"
        return None

    return reason


def estimate_cost(plan: Plan, spending: Spending, call_usd: float) -> float:
    """A plan's cost in USD, roughly: what planning spent so far and ``call_usd`` per delegation,
    counting every call a step may make (its pattern says how many)."""
    calls = sum(patterns.of(step).max_calls(step) for step in plan.steps)
    return round(spending.used["spend"] + calls * call_usd, 4)


def approval_asks(
    plan: Plan,
    waiting: list[str],
    decided: dict[str, dict[str, Any]],
    reason_for: Callable[[Any], str | None],
    request_text: str,
) -> list[dict[str, Any]]:
    """One ask per waiting step not yet decided that needs approval: what it is and why it asks."""
    asks: list[dict[str, Any]] = []
    for step_id in waiting:
        if step_id in decided:
            continue
        step = plan.step(step_id)
        reason = reason_for(step)
        if reason is None:
            continue
        calls = step.calls()
        ask = Ask(
            step=step_id,
            title=step.title,
            reason=reason,
            skill=calls[0].skill if calls else None,
            instruction=(calls[0].text if calls and calls[0].text else step.part) or request_text,
        )
        asks.append(ask.model_dump())
    return asks


def approval_prompt(asks: list[dict[str, Any]], timeout_s: float, default: str) -> str:
    lines = [f"- {a['step']}: {a['title'] or a['skill']} — {a['reason']}" for a in asks]
    return (
        "Approval needed before I continue:\n"
        + "\n".join(lines)
        + "\nAnswer on this task: approve, reject, or edit: <new instruction>."
        + f" Without an answer within {timeout_s:g}s the answer is {default}."
    )


def parse_decision(context: RequestContext) -> dict[str, Any] | None:
    """The caller's decision in their answer, or None when the answer is not one."""
    message = context.message
    if message is None:
        return None
    for part in message.parts:
        if part.HasField("data"):
            value = MessageToDict(part.data)
            if isinstance(value, dict) and value.get("decision") in ("approve", "reject", "edit"):
                if value["decision"] != "edit":
                    return Decision(decision=value["decision"]).dump()
                if not str(value.get("instruction") or "").strip():
                    return None
                return Decision(decision="edit", instruction=str(value["instruction"]).strip()).dump()
    text = context.get_user_input().strip()
    low = text.lower()
    if low.startswith("edit:") and text[5:].strip():
        return Decision(decision="edit", instruction=text[5:].strip()).dump()
    first = low.split()[0].strip(".!,") if low.split() else ""
    if first in ("approve", "approved", "yes", "y", "ok", "okay", "go"):
        return Decision(decision="approve").dump()
    if first in ("reject", "rejected", "no", "n", "deny", "denied", "stop"):
        return Decision(decision="reject").dump()
    return None


def read_decisions(
    approval: dict[str, Any], context: RequestContext, timed_out: bool
) -> dict[str, dict[str, Any]] | None:
    """The caller's answer to the pending ``approval``, per step asked; None when it is not an answer.
    An approval that ``timed_out`` takes its default (``deny`` rejects)."""
    asks = [a["step"] for a in approval.get("asks", [])]
    decision: dict[str, Any] | None
    if timed_out:
        answer: DecisionName = "approve" if approval.get("default") == "approve" else "reject"
        decision = Decision(decision=answer, by="timeout").dump()
    else:
        decision = parse_decision(context)
    if decision is None:
        return None
    return {step: dict(decision) for step in asks}
