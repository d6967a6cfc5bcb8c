"""Claude as planner, worker-creator and synthesiser (with ``ANTHROPIC_API_KEY``).

Planning is tool use against the plan's JSON schema: the model is given the request and the skills the
registry knows (alive agents first) and must call ``submit_plan``. An invalid plan goes back to the
model once with the validation error; a second invalid plan, or a model failure, falls back to the
offline planner — and the trace says so. Synthesis writes the answer from the workers' structured
outputs only; a text that cites a source it was not given, or drops one of the calculator's figures,
is replaced by the offline answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from podium.agents.host.tools import ToolSpec
from podium.agents.llm import Completion, LLMError, LLMToolsUnsupported, Message, ToolResultBlock
from podium.agents.llm.engine import default_max_tokens, turn_tokens
from podium.agents.orchestrator import patterns
from podium.agents.orchestrator.budget import Spending, spend_line
from podium.agents.orchestrator.catalog import Catalog
from podium.agents.orchestrator.errors import BudgetExceeded, PlanError
from podium.agents.orchestrator.events import TraceEvent
from podium.agents.orchestrator.patterns.context import Recorder
from podium.agents.orchestrator.plan import Call, DynamicStep, Plan, parse_plan, validate_plan
from podium.agents.orchestrator.planning.offline import OfflinePlanner
from podium.agents.orchestrator.state.trace import TraceEntry
from podium.agents.orchestrator.synth import Answer, Material, appendix, offline_answer

PLAN_TOOL = "submit_plan"
WORKERS_TOOL = "submit_workers"
MAX_TOKENS = 4096

PLANNER = """You are the planner of a multi-agent system. Turn the user's request into a plan of steps \
that specialist agents will carry out, and submit it by calling the submit_plan tool exactly once.

Rules:
- Use only the skills listed. Each step delegates to a skill; give it only the input it needs.
- A step's "inputs" map data fields to earlier outputs as "stepId.field" (e.g. {"notes": "research.findings"}).
- Patterns: {patterns}. Add a "gate" (covered, passed, cited, number, nonempty) where an output can be \
checked.
- Independent parts of the request must not depend on each other, so they run in parallel.
- List in "answer" the steps whose outputs answer the request, in the order the answer should follow."""


def planner_prompt() -> str:
    """The planner's system prompt, naming every registered pattern."""
    described = ", ".join(f'"{p.name}" ({p.summary})' for p in patterns.patterns())
    return PLANNER.replace("{patterns}", described)


WORKERS = """You create worker steps for one step of a running plan. For each item given, write one \
delegation (skill and a precise instruction) that works on that item, and submit them all by calling \
submit_workers once. Use only the skill offered."""

SYNTHESISER = """You are the synthesiser of a multi-agent system. Write one answer to the user's request \
from the workers' results below, as flowing prose (not a list of the workers' outputs).

Rules:
- Use only facts from the results. Keep every citation marker like [1] next to the claim it supports; use \
only the source numbers given. Do not write a sources list: it is added for you.
- Report every figure from a calculation exactly as given (same digits and formatting).
- If workers disagree, say so plainly. If a part could not be answered, say which.
- Answer in the language of the request."""


class _Workers(BaseModel):
    workers: list[Call] = Field(min_length=1, max_length=16)


class _Silent:
    """A trace that keeps nothing, for a plan asked for without one."""

    async def record(self, event: str, **fields: Any) -> TraceEntry:
        return TraceEntry(event=event, **fields)


class ModelPlanner:
    """Plans with the engine; falls back to ``offline``."""

    def __init__(self, engine: Any, offline: OfflinePlanner) -> None:
        self.engine = engine
        self.offline = offline
        self.name = getattr(engine, "model", "model")

    async def plan(
        self,
        text: str,
        data: dict[str, Any],
        catalog: Catalog,
        *,
        spending: Spending | None = None,
        trace: Recorder | None = None,
    ) -> Plan:
        """A validated plan. Raises ``PlanError`` only when the offline fallback cannot plan either."""
        spending = spending or Spending()
        trace = trace or _Silent()
        tool = ToolSpec(PLAN_TOOL, "Submit the plan for the request.", plan_schema())
        prompt = f"Request:\n{text}\n"
        if data:
            prompt += f"\nData given with the request:\n{json.dumps(data)[:8000]}\n"
        prompt += f"\nSkills available (alive agents first):\n{json.dumps(catalog.describe(), indent=1)}"
        messages = [Message.user(prompt)]
        problem = ""
        tools = [tool]  # emptied for a model that cannot take tools: it writes the plan as JSON instead
        attempt = 0
        while attempt < 2:
            attempt += 1
            try:
                spending.check()
                completion = await self.engine.complete(
                    system=planner_prompt(),
                    messages=messages,
                    tools=tools,
                    max_tokens=call_tokens(self.engine),
                )
            except LLMToolsUnsupported as exc:
                if not tools:
                    return await self._fallback(text, data, catalog, trace, f"the model failed: {exc}")
                tools, attempt = [], attempt - 1
                messages = [Message.user(f"{prompt}\n\n{_AS_JSON}\n{json.dumps(plan_schema())}")]
                await trace.record(TraceEvent.PLAN, state="without-tools", agent=self.name,
                                   reason=f"{exc}; asking for the plan as JSON text instead")  # fmt: skip
                continue
            except (LLMError, BudgetExceeded) as exc:
                return await self._fallback(text, data, catalog, trace, f"the model failed: {exc}")
            await charge(spending, trace, completion, "planner")
            call = next((c for c in completion.tool_calls if c.name == PLAN_TOOL), None)
            try:
                if tools and call is None:
                    raise PlanError(f"the reply did not call {PLAN_TOOL}")
                plan = parse_plan(call.arguments if call is not None else _json_object(completion.text))
                plan.planner = completion.model
                plan.gaps = []
                return validate_plan(plan, catalog.skills(), catalog.agents())
            except PlanError as exc:
                problem = exc.message
            await trace.record(
                TraceEvent.PLAN, state="invalid", agent=completion.model,
                reason=f"the model's plan is invalid: {problem}"
                + ("; sending it back once" if attempt == 1 else ""),
            )  # fmt: skip
            messages.append(completion.message)
            if call is not None:
                feedback = f"{problem}. Fix the plan and call {PLAN_TOOL} again."
                messages.append(Message("user", [ToolResultBlock(call.id, feedback, is_error=True)]))
            elif not tools:
                messages.append(Message.user(f"{problem}. Reply with the corrected plan as one JSON object."))
            else:
                messages.append(Message.user(f"{problem}. Call {PLAN_TOOL} with the plan."))
        return await self._fallback(
            text, data, catalog, trace, f"the model's plan was invalid twice ({problem})"
        )

    async def _fallback(
        self, text: str, data: dict[str, Any], catalog: Catalog, trace: Recorder, why: str
    ) -> Plan:
        await trace.record(
            TraceEvent.PLAN, state="fallback", agent="offline", reason=f"{why}; using the offline planner"
        )
        plan = await self.offline.plan(text, data, catalog)
        plan.reason = f"{why}; offline planner: {plan.reason}"
        return plan

    async def expand(self, step: DynamicStep, items: list[Any], request: str) -> list[Call]:
        """Workers for ``items`` written by the model (the step's template when the model fails)."""
        tool = ToolSpec(
            WORKERS_TOOL, "Submit one worker delegation per item.", _Workers.model_json_schema(by_alias=True)
        )
        prompt = (
            f"Request: {request}\nSkill to use: {step.worker.skill}\nTemplate instruction: {step.worker.text or ''}\n"
            f"Items:\n"
            + "\n".join(f"{i}. {json.dumps(item, default=str)[:1500]}" for i, item in enumerate(items, 1))
        )
        try:
            completion = await self.engine.complete(
                system=WORKERS,
                messages=[Message.user(prompt)],
                tools=[tool],
                max_tokens=call_tokens(self.engine),
            )
            call = next((c for c in completion.tool_calls if c.name == WORKERS_TOOL), None)
            if call is None:
                raise ValueError("no submit_workers call")
            workers = _Workers.model_validate(call.arguments).workers[: len(items)]
        except (LLMError, ValidationError, ValueError):
            return await self.offline.expand(step, items, request)
        return [w.model_copy(update={"skill": step.worker.skill}) for w in workers]


async def charge(spending: Spending, trace: Recorder, completion: Completion, who: str) -> None:
    """Charge one model call to the run's budget and say so in the trace."""
    usage = completion.usage
    cost = spending.charge(usage.input_tokens, usage.output_tokens, usage.cost, who=who)
    await trace.record(
        TraceEvent.SPEND, state=who, agent=completion.model,
        reason=f"{spend_line(usage.input_tokens, usage.output_tokens, cost)} on {completion.model} ({completion.engine})",
        data={"inputTokens": usage.input_tokens, "outputTokens": usage.output_tokens, "spendUsd": cost,
              "model": completion.model, "engine": completion.engine},
    )  # fmt: skip


def call_tokens(engine: Any) -> int:
    """``max_tokens`` of one planner or synthesiser call: the engine's configured output tokens (else
    :data:`MAX_TOKENS`) plus its thinking budget."""
    return turn_tokens(engine, default_max_tokens(engine, MAX_TOKENS))


_AS_JSON = (
    "This model cannot call tools: reply with the plan alone, as one JSON object (no prose, no code "
    "fence) matching this JSON schema:"
)


def _json_object(text: str) -> dict[str, Any]:
    """The JSON object a reply holds (a code fence or prose around it allowed). Raises ``PlanError``."""
    start, end = text.find("{"), text.rfind("}")
    try:
        value = json.loads(text[start : end + 1]) if -1 < start < end else None
    except ValueError as exc:
        raise PlanError(f"the reply is not a JSON plan ({exc})") from exc
    if not isinstance(value, dict):
        raise PlanError("the reply holds no JSON object")
    return value


def plan_schema() -> dict[str, Any]:
    """The plan's JSON schema as the model sees it (camelCase, the planner-only fields left out)."""
    schema = Plan.model_json_schema(by_alias=True)
    for name in ("planner", "gaps"):
        schema.get("properties", {}).pop(name, None)
    return schema


_MARKER = re.compile(r"\[(\d+)\]")


async def model_answer(engine: Any, material: Material, *, spending: Spending, trace: Recorder) -> Answer:
    """The answer written by the model from ``material``; the offline answer when the model fails or its
    text breaks a rule (an unknown source marker, a calculator figure left out)."""
    sections = [
        {"part": s.part, "result": s.text, "figures": s.figures, "agents": s.agents}
        for s in material.sections
    ]
    sources = [{"marker": s["marker"], "docId": s["docId"], "quote": s["quote"]} for s in material.sources]
    prompt = json.dumps(
        {"request": material.request, "results": sections, "sources": sources,
         "contradictions": material.contradictions, "unanswered": material.gaps},
        indent=1,
    )  # fmt: skip
    fallback = offline_answer(material)
    try:
        spending.check()
        completion = await engine.complete(
            system=SYNTHESISER, messages=[Message.user(prompt)], tools=[], max_tokens=call_tokens(engine)
        )
    except (LLMError, BudgetExceeded) as exc:
        fallback.warnings.append(f"the model could not write the answer ({exc}); assembled it offline")
        await trace.record(TraceEvent.ANSWER, state="fallback", reason=fallback.warnings[-1])
        return fallback
    await charge(spending, trace, completion, "synthesis")
    text = completion.text.strip()
    problems = []
    known = {str(s["marker"]) for s in material.sources}
    unknown = sorted(set(_MARKER.findall(text)) - known)
    if unknown:
        problems.append(f"it cites sources that do not exist: {', '.join(unknown)}")
    missing = [f for s in material.sections for f in s.figures if f not in text]
    if missing:
        problems.append(f"it leaves out the calculated figures {', '.join(missing)}")
    if not text:
        problems.append("it is empty")
    if problems:
        fallback.warnings.append("the model's answer was not used: " + "; ".join(problems))
        await trace.record(
            TraceEvent.ANSWER, state="fallback", agent=completion.model, reason=fallback.warnings[-1]
        )
        return fallback
    return Answer(
        text=f"{text}\n\n{appendix(material)}".strip(), material=material, synthesiser=completion.model
    )
