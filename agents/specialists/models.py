"""The specialists' JSON contract: what each accepts in a message's data part and the one artifact it
returns. Everything a specialist emits is validated by these models first, so a caller can rely on
the shape (``Model.model_json_schema()`` documents it).

JSON keys are camelCase, as everywhere in A2A (``taskId``, ``toolsCalled``, ``docId``); Python attributes
stay snake_case. Every model also accepts the snake_case spelling (``task_id``), which Podium wrote before,
so ``ResearchOutput.model_validate(data)`` reads an artifact's data part in either; ``model_dump()`` and
``model_dump_json()`` write camelCase.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    """Base of every specialist shape: camelCase in JSON, snake_case in Python, either spelling accepted."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


def _citation(value: Any) -> Any:
    """A bare document id is a citation without a quote."""
    return {"docId": value} if isinstance(value, str) else value


class Citation(Model):
    """A source: the document id (from the docs server) and the words quoted from it."""

    model_config = ConfigDict(extra="ignore")

    doc_id: str = Field(min_length=1, max_length=1024)
    quote: str = Field(default="", max_length=4000)


CitationIn = Annotated[Citation, BeforeValidator(_citation)]


class BlackboardSpec(Model):
    """Which notes of the conversation's blackboard to read before working and to write after."""

    model_config = ConfigDict(extra="forbid")

    read: list[str] = Field(default_factory=list, description="keys to read first")
    write: str | None = Field(default=None, min_length=1, max_length=200, description="key for the result")

    @field_validator("read", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class SpecialistInput(Model):
    """Fields every specialist accepts. ``question`` defaults to the message text."""

    model_config = ConfigDict(extra="ignore")

    question: str = Field(default="", max_length=20_000)
    blackboard: BlackboardSpec | None = None


class Note(Model):
    """One finding to write from: a statement and the sources behind it (the researcher's findings)."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=20_000)
    citations: list[CitationIn] = Field(default_factory=list)


class FeedbackItem(Model):
    """One actionable point from a review: which check failed, what to do, and what it is about."""

    model_config = ConfigDict(extra="ignore")

    check: str = Field(
        default="general",
        description="citations, coverage, length, numbers, arithmetic, form, sides, on_topic, distinct, model",
    )
    message: str
    sentence: str | None = Field(default=None, description="the draft sentence concerned, if any")
    terms: list[str] = Field(default_factory=list, description="missing key terms (coverage)")
    expected: str | None = Field(default=None, description="the correct value (numbers, arithmetic)")
    found: str | None = Field(default=None, description="the value the draft gives instead")
    max_words: int | None = Field(default=None, description="the length bound broken (length)")
    min_words: int | None = Field(default=None, description="the length bound broken (length)")


def _feedback(value: Any) -> Any:
    return {"message": value} if isinstance(value, str) else value


class ResearchInput(SpecialistInput):
    max_sources: int = Field(default=3, ge=1, le=3, description="documents to read and cite")


class AnalysisInput(SpecialistInput):
    pass


class WriterInput(SpecialistInput):
    notes: list[Note] = Field(default_factory=list)
    draft: str | None = Field(default=None, max_length=100_000)
    feedback: list[Annotated[FeedbackItem, BeforeValidator(_feedback)]] = Field(default_factory=list)
    citations: list[CitationIn] = Field(
        default_factory=list, description="sources of a draft without a sources list: [n] cites the n-th"
    )
    max_words: int | None = Field(default=None, ge=1)


class ReviewInput(SpecialistInput):
    draft: str = Field(default="", max_length=100_000)
    citations: list[CitationIn] = Field(default_factory=list, description="the sources; [n] cites the n-th")
    min_words: int = Field(default=15, ge=0)
    max_words: int = Field(default=800, ge=1)


# -- outputs ---------------------------------------------------------------------------------------


class SpecialistOutput(Model):
    """The data part of every specialist's artifact."""

    model_config = ConfigDict(extra="forbid")

    agent: str
    skill: str
    task_id: str
    result: str = Field(description="the answer, as text")
    citations: list[Citation] = Field(default_factory=list)
    confidence: float = Field(ge=0, le=1)
    engine: str = Field(description='"offline" or the model name')
    tools_called: list[str] = Field(default_factory=list, description="every tool call, in order")
    warnings: list[str] = Field(default_factory=list)
    usage: dict[str, Any] = Field(
        default_factory=dict,
        description="what the model calls spent (inputTokens, outputTokens, spendUsd, model); empty offline",
    )


class Finding(Model):
    text: str
    citations: list[Citation]


class ResearchOutput(SpecialistOutput):
    queries: list[str] = Field(default_factory=list, description="the searches run")
    findings: list[Finding] = Field(default_factory=list, description="feed these to the writer as notes")
    covered: bool = Field(description="false when the documentation does not answer the question")


class AnalysisOutput(SpecialistOutput):
    operation: str = Field(
        description="arithmetic, percentage, discount, increase, percent_change, what_percent, ratio, statistics, "
        "growth, loan"
    )
    tool: str = Field(default="", description="the calc tool used")
    arguments: dict[str, Any] = Field(default_factory=dict)
    value: float | None = Field(default=None, description="the headline number")
    values: dict[str, float | None] = Field(
        default_factory=dict, description="every figure the tool returned"
    )
    steps: list[str] = Field(default_factory=list)


class Source(Model):
    marker: int = Field(ge=1)
    doc_id: str
    quote: str = ""


class Change(Model):
    feedback: str
    change: str
    addressed: bool


class WriterOutput(SpecialistOutput):
    sources: list[Source] = Field(default_factory=list, description="[n] in the result cites sources[n-1]")
    revision: bool = False
    changes: list[Change] = Field(default_factory=list, description="how each feedback point was handled")


class Check(Model):
    name: Literal[
        "citations",
        "coverage",
        "length",
        "numbers",
        "arithmetic",
        "form",
        "sides",
        "on_topic",
        "distinct",
        "model",
    ]
    passed: bool
    detail: str


class ReviewOutput(SpecialistOutput):
    verdict: Literal["pass", "revise"]
    checks: list[Check]
    feedback: list[FeedbackItem] = Field(default_factory=list, description="one item per problem found")
