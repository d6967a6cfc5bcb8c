"""Named workflows: a fixed plan kept in the system, with a name, a description and input slots.

A workflow file (JSON, or YAML) holds ``name``, ``description``, ``inputs`` (slots: ``name``,
``description``, ``required``, ``default``), optional ``tags`` and ``examples`` and the ``plan`` (the
plan JSON the orchestrator runs, see :mod:`agents.orchestrator.plan`). Any string in the plan may name
a slot as ``{{slot}}``; :func:`render` substitutes the caller's inputs. Workflows are stored in Redis
(hash ``{ns}:workflows``, written by ``podium workflow add --redis-url``) and read from a folder
(``PODIUM_WORKFLOWS_DIR``, default ``~/.config/podium/workflows``), which is where the embedded bus
of ``podium up`` finds them. The orchestrator offers each as a skill ``workflow.NAME`` on its card and
runs one when a request names it (``{"workflow": NAME, "inputs": {...}}`` in a data part) or when the
request text names it or matches its examples.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml
from a2a.types import AgentCard, AgentSkill
from pydantic import Field, ValidationError, field_validator

from podium.agents.orchestrator.errors import PlanError
from podium.agents.orchestrator.plan import Plan, _Model, parse_plan, validate_plan
from podium.agents.text.words import key_terms
from podium.bus.keys import Keys
from podium.bus.text import text

DIR_ENV = "PODIUM_WORKFLOWS_DIR"
SKILL_PREFIX = "workflow."
SLOT = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_-]*)\s*\}\}")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
SUFFIXES = (".json", ".yaml", ".yml")
MATCH_SHARE = 0.6  # share of an example's key terms a request must contain to be routed to the workflow


class WorkflowError(PlanError):
    """A workflow file or request that cannot be used as given (a plan error: the task fails with it)."""


class Slot(_Model):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    description: str = Field(default="", max_length=500)
    required: bool = True
    default: Any = None


class Workflow(_Model):
    """A named, fixed plan with input slots."""

    name: str
    description: str = Field(min_length=1, max_length=1000)
    inputs: list[Slot] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    plan: dict[str, Any]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(
                f"{value!r}: a workflow name is lower-case letters, digits and '-', starting with a letter"
            )
        return value

    @property
    def skill_id(self) -> str:
        return SKILL_PREFIX + self.name

    def slots(self) -> dict[str, Slot]:
        return {s.name: s for s in self.inputs}


def parse_workflow(data: Any, source: str = "workflow") -> Workflow:
    """A workflow from its JSON data; its plan is parsed too. Raises ``WorkflowError`` naming ``source``,
    the field or the plan's step."""
    if not isinstance(data, dict):
        raise WorkflowError(f"{source}: a workflow is an object with name, description, inputs and plan")
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "workflow"
        raise WorkflowError(f"{source}: {where}: {first.get('msg', 'invalid')}") from exc
    known = workflow.slots()
    for name in sorted(set(_placeholders(workflow.plan)) - set(known)):
        raise WorkflowError(
            f"{source}: the plan uses {{{{{name}}}}}, which is not one of its inputs "
            f"({', '.join(known) or 'none'}); add it to inputs"
        )
    try:
        parse_plan(_fill(workflow.plan, _samples(workflow)))
    except PlanError as exc:
        raise WorkflowError(f"{source}: {exc.message}") from exc
    return workflow


def load_file(path: str | os.PathLike[str]) -> Workflow:
    """Read and parse a workflow file (``.json``, ``.yaml`` or ``.yml``). Raises ``WorkflowError``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkflowError(f"{p}: cannot read it: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if p.suffix == ".json" else "YAML"
        raise WorkflowError(f"{p}: not valid {kind}: {str(exc).splitlines()[0]}") from exc
    return parse_workflow(data, str(p))


def check(workflow: Workflow, skills: set[str], agents: set[str] | None = None, source: str = "") -> Plan:
    """The workflow's plan checked against the skills (and agents) available. Raises ``WorkflowError``
    naming the step."""
    try:
        plan = parse_plan(_fill(workflow.plan, _samples(workflow)))
        return validate_plan(plan, skills, agents)
    except PlanError as exc:
        raise WorkflowError(f"{source or 'workflow ' + repr(workflow.name)}: {exc.message}") from exc


def render(workflow: Workflow, inputs: dict[str, Any], text: str = "") -> Plan:
    """The workflow's plan with ``inputs`` substituted. A required slot without a value takes ``text``
    (the request) when it is the only one missing. Raises ``WorkflowError`` naming a missing slot."""
    values: dict[str, Any] = {}
    missing = []
    for slot in workflow.inputs:
        if slot.name in inputs and inputs[slot.name] not in (None, ""):
            values[slot.name] = inputs[slot.name]
        elif slot.default is not None or not slot.required:
            values[slot.name] = "" if slot.default is None else slot.default
        else:
            missing.append(slot.name)
    if len(missing) == 1 and text.strip():
        values[missing[0]] = text.strip()
        missing = []
    if missing:
        raise WorkflowError(
            f"workflow {workflow.name!r} needs input(s) {', '.join(missing)}: "
            f'send {{"workflow": "{workflow.name}", "inputs": {{"{missing[0]}": "..."}}}}'
        )
    unknown = sorted(set(inputs) - set(workflow.slots()))
    if unknown:
        raise WorkflowError(
            f"workflow {workflow.name!r} has no input(s) {', '.join(unknown)} "
            f"(its inputs: {', '.join(workflow.slots()) or 'none'})"
        )
    try:
        plan = parse_plan(_fill(workflow.plan, values))
    except PlanError as exc:
        raise WorkflowError(f"workflow {workflow.name!r}: {exc.message}") from exc
    plan.planner = f"workflow {workflow.name}"
    plan.reason = plan.reason or f"the fixed plan of workflow {workflow.name!r}: {workflow.description}"
    return plan


def match(text: str, workflows: list[Workflow]) -> tuple[Workflow, dict[str, Any]] | None:
    """The workflow a request's text asks for, with the inputs the text gives: one whose example with
    slots matches it ("write a doc brief on {{topic}}" takes the topic from the text), one it names
    ("run the NAME workflow"), or the one whose example it covers best (at least ``MATCH_SHARE`` of the
    example's key terms)."""
    spoken = " ".join(text.split()).strip(" .?!")
    for wf in workflows:
        for example in wf.examples:
            if SLOT.search(example) and (found := _pattern(example).fullmatch(spoken)):
                return wf, {k: v.strip() for k, v in found.groupdict().items()}
    lowered = text.lower()
    for wf in workflows:
        if re.search(rf"\b{re.escape(wf.name)}\b\s+workflow|workflow\s+\b{re.escape(wf.name)}\b", lowered):
            return wf, {}
    words = set(key_terms(text))
    best: tuple[float, Workflow] | None = None
    for wf in workflows:
        for example in wf.examples:
            terms = set(key_terms(SLOT.sub(" ", example)))
            if not terms:
                continue
            share = len(terms & words) / len(terms)
            if share >= MATCH_SHARE and (best is None or share > best[0]):
                best = (share, wf)
    return (best[1], {}) if best else None


def _pattern(example: str) -> re.Pattern[str]:
    """A regex for an example with slots: its words as written (any case, any spacing), each slot a group."""
    out, at, seen = "", 0, set()
    for m in SLOT.finditer(example):
        before = example[at : m.start()]
        out += r"\s+".join(re.escape(w) for w in before.split())
        if before[-1:].isspace():
            out += r"\s+"
        name = m.group(1)
        out += f"(?P<{name}>.+?)" if name not in seen else ".+?"
        seen.add(name)
        at = m.end()
        if example[at : at + 1].isspace():
            out += r"\s+"
    out += r"\s+".join(re.escape(w) for w in example[at:].strip(" .?!").split())
    return re.compile(out, re.I | re.S)


async def plan_for(
    store: WorkflowStore, text: str, data: dict[str, Any], skills: set[str], agents: set[str]
) -> Plan | None:
    """The validated plan of the workflow a request asks for: named in its data part
    (``{"workflow": NAME, "inputs": {...}}``) or matched from its text; None when it asks for none.
    Raises ``WorkflowError`` (an unknown name, a missing input, a step whose skill is gone)."""
    named = data.get("workflow")
    inputs = data.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise WorkflowError('inputs: expected an object of slot values, e.g. {"topic": "..."}')
    workflows = await store.all()
    if named is not None:
        workflow = workflows.get(str(named))
        if workflow is None:
            known = ", ".join(sorted(workflows)) or "none; add one with podium workflow add FILE"
            raise WorkflowError(f"no workflow named {named!r} (workflows: {known})")
        text = "" if text == explicit_text(str(named)) else text
    else:
        found = match(text, list(workflows.values()))
        if found is None:
            return None
        workflow, inputs = found
        inputs = {**inputs, **{k: v for k, v in data.items() if k in workflow.slots()}}
    plan = render(workflow, inputs, text)
    try:
        return validate_plan(plan, skills, agents)
    except PlanError as exc:
        raise WorkflowError(f"workflow {workflow.name!r}: {exc.message}") from exc


def explicit_text(name: str) -> str:
    """The request text of a call that names a workflow and sends no text."""
    return f"(workflow {name})"


def skill(workflow: Workflow) -> AgentSkill:
    """The skill the orchestrator's card offers for ``workflow``."""
    slots = ", ".join(s.name + ("" if s.required and s.default is None else "?") for s in workflow.inputs)
    return AgentSkill(
        id=workflow.skill_id,
        name=f"Workflow {workflow.name}",
        description=f"{workflow.description} (a fixed plan; send "
        f'{{"workflow": "{workflow.name}", "inputs": {{...}}}} in a data part; inputs: {slots or "none"})',
        tags=["workflow", *workflow.tags],
        examples=list(workflow.examples),
    )


def offer(card: AgentCard, workflows: dict[str, Workflow]) -> bool:
    """Make ``card``'s workflow skills those of ``workflows``; returns whether the card changed."""
    wanted = [skill(workflows[name]) for name in sorted(workflows)]
    current = [s for s in card.skills if s.id.startswith(SKILL_PREFIX)]
    if [s.SerializeToString(deterministic=True) for s in current] == [
        s.SerializeToString(deterministic=True) for s in wanted
    ]:
        return False
    keep = [s for s in card.skills if not s.id.startswith(SKILL_PREFIX)]
    del card.skills[:]
    card.skills.extend([*keep, *wanted])
    return True


def folder() -> Path:
    """Where workflow files are read from: ``$PODIUM_WORKFLOWS_DIR`` or ``~/.config/podium/workflows``."""
    given = os.environ.get(DIR_ENV)
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "podium" / "workflows"


def read_folder(path: Path | None = None) -> tuple[dict[str, Workflow], list[str]]:
    """The workflows in the folder and a line per file that is not a valid workflow."""
    path = path or folder()
    found: dict[str, Workflow] = {}
    problems: list[str] = []
    if not path.is_dir():
        return found, problems
    for file in sorted(path.iterdir()):
        if file.suffix not in SUFFIXES or not file.is_file():
            continue
        try:
            wf = load_file(file)
        except WorkflowError as exc:
            problems.append(exc.message)
            continue
        found.setdefault(wf.name, wf)
    return found, problems


class WorkflowStore:
    """Workflows in Redis (``{ns}:workflows``) and in the folder; Redis wins on a shared name."""

    def __init__(self, redis: Any, keys: Keys, path: Path | None = None) -> None:
        self.redis, self.keys, self.path = redis, keys, path
        self.problems: list[str] = []  # the files and entries the last read skipped, one line each

    @property
    def key(self) -> str:
        return self.keys.workflows()

    async def all(self) -> dict[str, Workflow]:
        found, problems = read_folder(self.path)
        if self.redis is not None:
            for name, raw in (await self.redis.hgetall(self.key)).items():
                label = text(name)
                try:
                    found[label] = parse_workflow(json.loads(raw), f"workflow {label!r} in Redis")
                except WorkflowError as exc:
                    problems.append(exc.message)
                except ValueError as exc:
                    problems.append(f"workflow {label!r} in Redis: not JSON: {exc}")
        self.problems = problems
        return found

    async def get(self, name: str) -> Workflow | None:
        return (await self.all()).get(name)

    async def add(self, workflow: Workflow) -> None:
        await self.redis.hset(self.key, workflow.name, workflow.model_dump_json(by_alias=True))

    async def remove(self, name: str) -> bool:
        return bool(await self.redis.hdel(self.key, name))


def _samples(workflow: Workflow) -> dict[str, Any]:
    """Values to check the plan with: each slot's default, else a word."""
    return {s.name: "x" if s.default is None else s.default for s in workflow.inputs}


def _placeholders(value: Any) -> list[str]:
    if isinstance(value, str):
        return SLOT.findall(value)
    if isinstance(value, dict):
        return [n for v in value.values() for n in _placeholders(v)]
    if isinstance(value, list):
        return [n for v in value for n in _placeholders(v)]
    return []


def _fill(value: Any, values: dict[str, Any]) -> Any:
    """``value`` with each ``{{slot}}`` replaced; a string that is only a placeholder takes the value
    as it is (a number stays a number)."""
    if isinstance(value, str):
        whole = SLOT.fullmatch(value.strip())
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return SLOT.sub(lambda m: str(values.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value
