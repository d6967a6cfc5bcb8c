"""What a step produced, and how later steps read slices of it.

A step's ``output`` is the structured data the agent returned (its artifact's data part, plus its text
as ``result``), or, for the composite patterns, a small document built by the runner (a vote's tally,
a loop's rounds, a parallel join's sections, a dynamic step's items). References such as
``research.findings`` or ``write.sources.0.docId`` select from it; camelCase and snake_case spellings
of a key are the same key.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel, to_snake

Status = Literal["completed", "failed", "skipped"]


class StepResult(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    step: str
    status: Status
    output: dict[str, Any] = Field(default_factory=dict)
    text: str = ""
    agent: str | None = None
    binding: str | None = None
    agents: list[str] = Field(default_factory=list, description="every agent that worked on the step")
    error: str = ""
    attempts: int = 0
    started: float = Field(default_factory=time.time)
    ended: float = Field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @property
    def duration_ms(self) -> float:
        return round((self.ended - self.started) * 1000, 1)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class RefError(LookupError):
    """A reference selects nothing in the output it names."""


def select(value: Any, path: list[str]) -> Any:
    """Follow ``path`` into ``value`` (dict keys in either spelling, list indexes). Raises ``RefError``."""
    for i, key in enumerate(path):
        if isinstance(value, dict):
            for candidate in (key, to_camel(key), to_snake(key)):
                if candidate in value:
                    value = value[candidate]
                    break
            else:
                raise RefError(f"no field {'.'.join(path[: i + 1])!r}")
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise RefError(f"no field {'.'.join(path[: i + 1])!r}")
    return value


def resolve(ref: str, results: dict[str, StepResult], local: dict[str, Any]) -> Any:
    """The value ``ref`` names: ``$request``/``$gen``/``$eval``/``$item`` from ``local``, else a slice of
    a finished step's output. Raises ``RefError`` when the step did not complete or has no such field."""
    head, *path = ref.split(".")
    if head.startswith("$"):
        if head not in local:
            raise RefError(f"{head} is not available here")
        return select(local[head], path)
    result = results.get(head)
    if result is None or not result.ok:
        raise RefError(f"step {head!r} has no result")
    return select(result.output, path)
