"""A plan is data: the steps the orchestrator runs, each with one orchestration pattern.

A step's input is the request (or the part of it the step serves) plus only the slices of earlier
steps' outputs it names (``inputs``: data-part field -> ``"step.path"``), never the whole history.
Patterns: ``task`` (one delegation), ``route`` (pick a skill by the input, with a default), ``parallel``
(join independent branches), ``vote`` (the same call n times or on n agents, with a quorum), ``loop``
(generator and evaluator, at most k rounds) and ``dynamic`` (workers created at run time from an
earlier step's list). Any step may carry a ``gate``: a programmatic check of its output that passes,
retries the step with the check's feedback, or fails it.

:func:`validate_plan` rejects unknown skills, dangling references, cycles and empty plans with a
:class:`PlanError` that names the step.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from podium.agents.orchestrator.errors import PlanError

STEP_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
# "$request" (the step's text: the request or its part), "$gen"/"$eval" (inside a loop), or
# "step.path.to.field" (a slice of an earlier step's output).
REF = re.compile(r"^(\$request|\$gen|\$eval|\$item|[A-Za-z][A-Za-z0-9_-]*)(\.[A-Za-z0-9_-]+)*$")
MAX_STEPS = 128


class _Model(BaseModel):
    """Plan JSON is camelCase like the rest of A2A; Python names stay snake_case."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Call(_Model):
    """One delegation: the skill wanted, the text sent and the data part built from earlier outputs."""

    skill: str = Field(min_length=1, max_length=128)
    agent: str | None = Field(default=None, description="pin an agent; default: found by skill")
    text: str | None = Field(
        default=None,
        max_length=20_000,
        description="the message text; default: the step's part of the request",
    )
    inputs: dict[str, str] = Field(
        default_factory=dict, description="data field -> 'step.path' of an earlier output"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="literal data-part fields")
    metadata: dict[str, Any] = Field(default_factory=dict, description="message metadata for the agent")

    @field_validator("inputs")
    @classmethod
    def _refs(cls, value: dict[str, str]) -> dict[str, str]:
        for name, ref in value.items():
            if not REF.match(ref):
                raise ValueError(f"input {name!r}: {ref!r} is not a reference ('step.field', '$request')")
        return value


class Gate(_Model):
    """A check on a step's output. ``passed``: a review verdict of pass; ``covered``: the sources cover
    the question; ``cited``: the text cites sources it lists; ``number``: a numeric value;
    ``nonempty``; ``equals``/``matches``: ``field`` equals ``value`` / matches the regex ``value``."""

    check: Literal["nonempty", "covered", "passed", "cited", "number", "equals", "matches"]
    field: str | None = Field(default=None, description="path in the output (equals, matches, number)")
    value: Any = None
    max_attempts: int = Field(default=2, ge=1, le=5, description="runs of the step before the gate fails it")


class _Step(_Model):
    id: str
    title: str = Field(default="", max_length=300, description="what the step does, for people")
    part: str | None = Field(default=None, max_length=20_000, description="the part of the request it serves")
    depends_on: list[str] = Field(default_factory=list)
    required: bool = Field(
        default=False, description="true: its failure fails the task; false: it leaves a named gap"
    )
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    retries: int | None = Field(default=None, ge=0, le=10, description="retries of transient failures")
    gate: Gate | None = None
    needs_approval: bool = Field(default=False, description="pause for the caller's approval first")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not STEP_ID.match(value):
            raise ValueError(f"{value!r}: a step id is a letter then up to 63 letters, digits, '_' or '-'")
        return value

    def calls(self) -> list[Call]:
        """Every delegation this step may make (for validation)."""
        return []

    def refs(self) -> list[str]:
        """The step ids this step reads from."""
        return sorted({_ref_step(r) for c in self.calls() for r in c.inputs.values()} - {""})


class TaskStep(_Step):
    """One call to one skill, its output checked by the step's gates (a chain is task steps in order)."""

    pattern: Literal["task"] = "task"
    call: Call

    def calls(self) -> list[Call]:
        return [self.call]


class When(_Model):
    """A route's condition on the routed text: its kind (as the specialists classify requests), a
    regex, or any of some words."""

    kind: Literal["compute", "research", "write", "review", "revise", "creative"] | None = None
    matches: str | None = Field(default=None, max_length=500)
    contains: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> When:
        if self.kind is None and self.matches is None and not self.contains:
            raise ValueError("a route condition needs kind, matches or contains")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"matches: not a regular expression: {exc}") from exc
        return self


class Route(_Model):
    when: When
    call: Call


class RouteStep(_Step):
    """Routing: the first route whose condition matches ``on`` (the request, or an earlier output) is
    called; the default call when none does."""

    pattern: Literal["route"] = "route"
    on: str = Field(default="$request", description="what to route on: '$request' or 'step.path'")
    routes: list[Route] = Field(min_length=1)
    default: Call

    def calls(self) -> list[Call]:
        return [r.call for r in self.routes] + [self.default]

    def refs(self) -> list[str]:
        return sorted(set(super().refs()) | ({_ref_step(self.on)} - {""}))


class ParallelStep(_Step):
    """Joins independent branches (steps that do not depend on each other), run concurrently."""

    pattern: Literal["parallel"] = "parallel"
    branches: list[str] = Field(min_length=2)

    def refs(self) -> list[str]:
        return sorted(set(self.branches))


class VoteStep(_Step):
    """Voting: the same call run several times (or once per named agent); the answer at ``key`` that
    reaches the quorum wins."""

    pattern: Literal["vote"] = "vote"
    call: Call
    voters: int = Field(default=3, ge=1, le=9, description="runs of the call (ignored when agents are named)")
    agents: list[str] = Field(default_factory=list, description="one vote per named agent")
    key: str = Field(default="value", description="path of the answer compared between votes")
    quorum: int | None = Field(default=None, ge=1, description="votes the winner needs; default: a majority")
    tie: Literal["fail", "first"] = Field(
        default="fail", description="equal top counts: fail, or the earliest answer"
    )

    def calls(self) -> list[Call]:
        return [self.call]

    @property
    def n(self) -> int:
        return len(self.agents) or self.voters

    @property
    def needed(self) -> int:
        return self.quorum or self.n // 2 + 1


class LoopStep(_Step):
    """Evaluator-optimizer: the generator writes, the evaluator judges, the generator revises from the
    evaluator's feedback, until the ``accept`` check passes or ``max_rounds`` rounds ran."""

    pattern: Literal["loop"] = "loop"
    generator: Call
    evaluator: Call
    max_rounds: int = Field(default=3, ge=1, le=10)
    accept: Gate = Field(default_factory=lambda: Gate(check="passed"))
    revise: dict[str, str] = Field(
        default_factory=lambda: {
            "draft": "$gen.result",
            "feedback": "$eval.feedback",
            "citations": "$gen.sources",
        },
        description="data added to the generator's call in rounds after the first",
    )

    def calls(self) -> list[Call]:
        return [self.generator, self.evaluator]

    def refs(self) -> list[str]:
        own = {_ref_step(r) for r in self.revise.values()}
        return sorted((set(super().refs()) | own) - {""})


class DynamicStep(_Step):
    """Orchestrator-workers: at run time the planner turns each item of an earlier step's list
    (``over``) into a worker step; the worker template's text may use ``{item}`` and ``{index}``."""

    pattern: Literal["dynamic"] = "dynamic"
    over: str = Field(description="'step.path' of a list in an earlier output")
    worker: Call
    max_workers: int = Field(default=5, ge=1, le=16)

    def calls(self) -> list[Call]:
        return [self.worker]

    def refs(self) -> list[str]:
        return sorted((set(super().refs()) | {_ref_step(self.over)}) - {""})


Step = Annotated[
    TaskStep | RouteStep | ParallelStep | VoteStep | LoopStep | DynamicStep, Field(discriminator="pattern")
]
PATTERNS = ("task", "route", "parallel", "vote", "loop", "dynamic")


class Plan(_Model):
    """What the orchestrator runs: steps (each with one pattern), which of them answer, and the named gaps
    no step can serve. Build one with :func:`parse_plan` and check it with :func:`validate_plan`."""

    steps: list[Step] = Field(default_factory=list)
    answer: list[str] = Field(
        default_factory=list, description="steps whose outputs make the answer; default: the last ones"
    )
    gaps: list[str] = Field(default_factory=list, description="parts of the request no step can serve")
    planner: str = Field(default="offline", description="who made the plan")
    reason: str = Field(default="", max_length=2000)

    def step(self, step_id: str) -> _Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def deps(self, step: _Step) -> list[str]:
        """Everything ``step`` waits for: its declared dependencies and the steps it reads."""
        return sorted(set(step.depends_on) | set(step.refs()))

    def answer_steps(self) -> list[str]:
        """The steps whose outputs answer the request: ``answer``, or the steps nothing depends on."""
        if self.answer:
            return list(self.answer)
        needed = {d for s in self.steps for d in self.deps(s)}
        return [s.id for s in self.steps if s.id not in needed]


def parse_plan(data: Any) -> Plan:
    """A plan from JSON data. Raises ``PlanError`` naming the step and field that is wrong."""
    if not isinstance(data, dict):
        raise PlanError("a plan is a JSON object with a 'steps' list")
    if isinstance(data.get("steps"), list):  # a step without a pattern is a plain task
        data = {
            **data,
            "steps": [{"pattern": "task", **s} if isinstance(s, dict) else s for s in data["steps"]],
        }
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(_describe(exc, data)) from exc


def validate_plan(plan: Plan, skills: set[str], agents: set[str] | None = None) -> Plan:
    """Check ``plan`` against the skills (and agents) available. Returns it, or raises ``PlanError``
    for an empty plan, too many steps, a duplicate id, an unknown skill or agent, a dangling
    reference, branches that are not independent, or a cycle — naming the step."""
    if not plan.steps:
        raise PlanError("the plan has no steps")
    if len(plan.steps) > MAX_STEPS:
        raise PlanError(f"the plan has {len(plan.steps)} steps; at most {MAX_STEPS} are allowed")
    ids: dict[str, _Step] = {}
    for step in plan.steps:
        if step.id in ids:
            raise PlanError(f"step {step.id!r}: the id is used twice")
        ids[step.id] = step
    for step in plan.steps:
        for call in step.calls():
            if call.skill not in skills:
                known = ", ".join(sorted(skills)) or "none"
                raise PlanError(
                    f"step {step.id!r}: no agent offers skill {call.skill!r} (known skills: {known})"
                )
            if call.agent is not None and agents is not None and call.agent not in agents:
                raise PlanError(f"step {step.id!r}: agent {call.agent!r} is not registered")
        if isinstance(step, VoteStep):
            if agents is not None:
                for agent in step.agents:
                    if agent not in agents:
                        raise PlanError(f"step {step.id!r}: voter agent {agent!r} is not registered")
            if step.needed > step.n:
                raise PlanError(
                    f"step {step.id!r}: a quorum of {step.needed} is more than its {step.n} voters"
                )
        for dep in plan.deps(step):
            if dep == step.id:
                raise PlanError(f"step {step.id!r}: it cannot depend on or read from itself")
            if dep not in ids:
                raise PlanError(f"step {step.id!r}: it refers to step {dep!r}, which the plan does not have")
        for call in step.calls():
            for name, ref in call.inputs.items():
                if ref.startswith(("$gen", "$eval")) and not isinstance(step, LoopStep):
                    raise PlanError(f"step {step.id!r}: input {name!r} uses {ref!r} outside a loop")
                if ref.startswith("$item") and not isinstance(step, DynamicStep):
                    raise PlanError(f"step {step.id!r}: input {name!r} uses {ref!r} outside a dynamic step")
    _check_cycles(plan, ids)
    for step in plan.steps:
        if isinstance(step, ParallelStep):
            _check_independent(plan, step, ids)
    for answer in plan.answer:
        if answer not in ids:
            raise PlanError(f"answer: the plan has no step {answer!r}")
    return plan


def _ref_step(ref: str) -> str:
    """The step id a reference reads from ('' for $request and loop/dynamic locals)."""
    head = ref.split(".", 1)[0]
    return "" if head.startswith("$") else head


def _check_cycles(plan: Plan, ids: dict[str, _Step]) -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(step_id: str) -> None:
        state[step_id] = 1
        path.append(step_id)
        for dep in plan.deps(ids[step_id]):
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                raise PlanError(f"step {dep!r}: steps {' -> '.join(cycle)} form a cycle")
            if state.get(dep) is None:
                visit(dep)
        path.pop()
        state[step_id] = 2

    for step_id in ids:
        if step_id not in state:
            visit(step_id)


def ancestors(plan: Plan, step_id: str) -> set[str]:
    """Every step ``step_id`` waits for, directly or not."""
    seen: set[str] = set()
    todo = list(plan.deps(plan.step(step_id)))
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo += plan.deps(plan.step(dep))
    return seen


def _check_independent(plan: Plan, step: ParallelStep, ids: dict[str, _Step]) -> None:
    if len(set(step.branches)) != len(step.branches):
        raise PlanError(f"step {step.id!r}: a branch is listed twice")
    for branch in step.branches:
        before = ancestors(plan, branch)
        for other in step.branches:
            if other != branch and other in before:
                raise PlanError(
                    f"step {step.id!r}: branches {other!r} and {branch!r} are not independent "
                    f"({branch!r} waits for {other!r}); chain them instead"
                )


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    first = exc.errors()[0]
    loc = list(first.get("loc", ()))
    where = ""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = data.get("steps") or []
        raw = steps[loc[1]] if loc[1] < len(steps) else {}
        name = raw.get("id") if isinstance(raw, dict) else None
        where = f"step {name!r}" if name else f"steps[{loc[1]}]"
        rest = [str(p) for p in loc[2:] if p not in PATTERNS]
        if rest:
            where += ": " + ".".join(rest)
    else:
        where = ".".join(str(p) for p in loc) or "plan"
    message = str(first.get("msg", "invalid"))
    if first.get("type") == "union_tag_invalid":
        message = f"unknown pattern; use one of {', '.join(PATTERNS)}"
    return f"invalid plan: {where}: {message}"
