"""What every plan step is made of, whatever its pattern: the step's common fields, a delegation
(:class:`Call`) and a check of its output (:class:`Gate`).

Each pattern's own step model (``patterns/<name>.py``) extends :class:`StepBase`; the plan's step union
is built from the registered patterns (:mod:`~podium.agents.orchestrator.plan`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

STEP_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
# "$request" (the step's text: the request or its part), a pattern's local such as "$gen"/"$eval" (inside
# a loop) or "$item" (inside a dynamic step), or "step.path.to.field" (a slice of an earlier step's output).
REF = re.compile(r"^(\$[a-z]+|[A-Za-z][A-Za-z0-9_-]*)(\.[A-Za-z0-9_-]+)*$")
REQUEST = "$request"


class PlanModel(BaseModel):
    """Plan JSON is camelCase like the rest of A2A; Python names stay snake_case."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


def _known_locals() -> set[str]:
    from podium.agents.orchestrator.patterns.registry import local_names

    return {REQUEST, *local_names()}


class Call(PlanModel):
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
            match = REF.match(ref)
            if not match or (match.group(1).startswith("$") and match.group(1) not in _known_locals()):
                raise ValueError(f"input {name!r}: {ref!r} is not a reference ('step.field', '$request')")
        return value


class Gate(PlanModel):
    """A check on a step's output. ``passed``: a review verdict of pass; ``covered``: the sources cover
    the question; ``cited``: the text cites sources it lists; ``number``: a numeric value;
    ``nonempty``; ``equals``/``matches``: ``field`` equals ``value`` / matches the regex ``value``."""

    check: Literal["nonempty", "covered", "passed", "cited", "number", "equals", "matches"]
    field: str | None = Field(default=None, description="path in the output (equals, matches, number)")
    value: Any = None
    max_attempts: int = Field(default=2, ge=1, le=5, description="runs of the step before the gate fails it")


class StepBase(PlanModel):
    """The fields every step has. A pattern's step model adds ``pattern: Literal["<name>"]`` and its own."""

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
        return sorted({ref_step(r) for c in self.calls() for r in c.inputs.values()} - {""})


def ref_step(ref: str) -> str:
    """The step id a reference reads from ('' for $request and a pattern's locals)."""
    head = ref.split(".", 1)[0]
    return "" if head.startswith("$") else head
