"""A plan is data: the steps the orchestrator runs, each with one orchestration pattern.

A step's input is the request (or the part of it the step serves) plus only the slices of earlier
steps' outputs it names (``inputs``: data-part field -> ``"step.path"``), never the whole history.
Each step has one pattern (``task``, ``route``, ``parallel``, ``vote``, ``loop``, ``dynamic``, or one
registered later: :mod:`podium.agents.orchestrator.patterns`); the step union is built from the
registered patterns' step models. Any step may carry a ``gate``: a programmatic check of its output that passes,
retries the step with the check's feedback, or fails it.

:func:`validate_plan` rejects unknown skills, dangling references, cycles and empty plans with a
:class:`PlanError` that names the step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, ValidationError

from podium.agents.orchestrator import patterns as _patterns
from podium.agents.orchestrator.errors import PlanError
from podium.agents.orchestrator.patterns.dynamic import DynamicStep
from podium.agents.orchestrator.patterns.loop import LoopStep
from podium.agents.orchestrator.patterns.parallel import ParallelStep
from podium.agents.orchestrator.patterns.registry import on_change
from podium.agents.orchestrator.patterns.route import Route, RouteStep, When
from podium.agents.orchestrator.patterns.task import TaskStep
from podium.agents.orchestrator.patterns.vote import VoteStep
from podium.agents.orchestrator.steps import REF, STEP_ID, Call, Gate, PlanModel, StepBase

MAX_STEPS = 128
_Model = PlanModel  # the camelCase base, under its old name (workflows.py)


def step_union() -> Any:
    """The type of a plan step: the registered patterns' step models, told apart by ``pattern``."""
    models = tuple(p.step for p in _patterns.patterns())
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="pattern")]  # noqa: UP007 (built at run time)


if TYPE_CHECKING:
    Step = StepBase
else:
    Step = step_union()


def __getattr__(name: str) -> Any:
    if name == "PATTERNS":  # the registered pattern names, as they are now
        return _patterns.names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Plan(PlanModel):
    """What the orchestrator runs: steps (each with one pattern), which of them answer, and the named gaps
    no step can serve. Build one with :func:`parse_plan` and check it with :func:`validate_plan`."""

    steps: list[Step] = Field(default_factory=list)
    answer: list[str] = Field(
        default_factory=list, description="steps whose outputs make the answer; default: the last ones"
    )
    gaps: list[str] = Field(default_factory=list, description="parts of the request no step can serve")
    planner: str = Field(default="offline", description="who made the plan")
    reason: str = Field(default="", max_length=2000)

    def step(self, step_id: str) -> StepBase:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def deps(self, step: StepBase) -> list[str]:
        """Everything ``step`` waits for: its declared dependencies and the steps it reads."""
        return sorted(set(step.depends_on) | set(step.refs()))

    def ancestors(self, step_id: str) -> set[str]:
        """Every step ``step_id`` waits for, directly or not."""
        seen: set[str] = set()
        todo = list(self.deps(self.step(step_id)))
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo += self.deps(self.step(dep))
        return seen

    def answer_steps(self) -> list[str]:
        """The steps whose outputs answer the request: ``answer``, or the steps nothing depends on."""
        if self.answer:
            return list(self.answer)
        needed = {d for s in self.steps for d in self.deps(s)}
        return [s.id for s in self.steps if s.id not in needed]


def _rebuild() -> None:
    """A pattern came or went: plans validate, serialise and describe themselves with the new union."""
    global Step
    Step = step_union()
    Plan.model_fields["steps"].annotation = list[Step]  # type: ignore[valid-type]
    Plan.model_rebuild(force=True)


on_change(_rebuild)


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
    reference, a cycle, or what a step's pattern checks (a parallel's branches that are not
    independent, a vote's quorum) — naming the step."""
    if not plan.steps:
        raise PlanError("the plan has no steps")
    if len(plan.steps) > MAX_STEPS:
        raise PlanError(f"the plan has {len(plan.steps)} steps; at most {MAX_STEPS} are allowed")
    ids: dict[str, StepBase] = {}
    for step in plan.steps:
        if step.id in ids:
            raise PlanError(f"step {step.id!r}: the id is used twice")
        ids[step.id] = step
    owners = {name: p for p in _patterns.patterns() for name in p.locals}
    for step in plan.steps:
        pattern = _patterns.of(step)
        for call in step.calls():
            if call.skill not in skills:
                known = ", ".join(sorted(skills)) or "none"
                raise PlanError(
                    f"step {step.id!r}: no agent offers skill {call.skill!r} (known skills: {known})"
                )
            if call.agent is not None and agents is not None and call.agent not in agents:
                raise PlanError(f"step {step.id!r}: agent {call.agent!r} is not registered")
        pattern.check(step, agents)
        for dep in plan.deps(step):
            if dep == step.id:
                raise PlanError(f"step {step.id!r}: it cannot depend on or read from itself")
            if dep not in ids:
                raise PlanError(f"step {step.id!r}: it refers to step {dep!r}, which the plan does not have")
        for call in step.calls():
            for name, ref in call.inputs.items():
                owner = owners.get(ref.split(".", 1)[0])
                if owner is not None and owner is not pattern:
                    raise PlanError(f"step {step.id!r}: input {name!r} uses {ref!r} outside {owner.noun}")
    _check_cycles(plan, ids)
    for step in plan.steps:
        _patterns.of(step).check_in(step, plan)
    for answer in plan.answer:
        if answer not in ids:
            raise PlanError(f"answer: the plan has no step {answer!r}")
    return plan


def _check_cycles(plan: Plan, ids: dict[str, StepBase]) -> None:
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
    return plan.ancestors(step_id)


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    first = exc.errors()[0]
    loc = list(first.get("loc", ()))
    names = _patterns.names()
    where = ""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = data.get("steps") or []
        raw = steps[loc[1]] if loc[1] < len(steps) else {}
        name = raw.get("id") if isinstance(raw, dict) else None
        where = f"step {name!r}" if name else f"steps[{loc[1]}]"
        rest = [str(p) for p in loc[2:] if p not in names]
        if rest:
            where += ": " + ".".join(rest)
    else:
        where = ".".join(str(p) for p in loc) or "plan"
    message = str(first.get("msg", "invalid"))
    if first.get("type") == "union_tag_invalid":
        message = f"unknown pattern; use one of {', '.join(names)}"
    return f"invalid plan: {where}: {message}"


__all__ = [
    "MAX_STEPS",
    "REF",
    "STEP_ID",
    "Call",
    "DynamicStep",
    "Gate",
    "LoopStep",
    "ParallelStep",
    "Plan",
    "Route",
    "RouteStep",
    "Step",
    "StepBase",
    "TaskStep",
    "VoteStep",
    "When",
    "ancestors",
    "parse_plan",
    "step_union",
    "validate_plan",
]
