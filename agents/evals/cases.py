"""An evaluation set: one case a JSONL line, and how an answer is scored against it.

A case is ``{"question": "...", "expect": {...}}`` with optional ``"id"`` and ``"tags"``. What ``expect``
may hold (all given checks must pass):

- ``"number": 42`` — the answer states a number within ``"tolerance"`` (relative, default 1e-6) of 42;
  with ``"exact": true`` it must state exactly that number (``1,267,650,600,228,229,401,496,703,205,376``
  and ``1267650600228229401496703205376`` both count; ``1.26765e+30`` does not).
- ``"contains": ["...", ...]`` — each string appears in the answer (case-insensitive); a string holding
  ``|`` passes when any of its alternatives appears (``"context manager|__enter__"``).
- ``"excludes": ["...", ...]`` — none of these appears in the answer (an off-topic passage, a wrong step).
- ``"max_sentences": 2`` — the answer, without its sources, has at most that many sentences.
- ``"refuse": true`` — the task must fail, be rejected, or say that it cannot answer.

The answer scored is the text before its ``Sources:`` list, so a figure that appears only inside a cited
quote does not count as stated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["Case", "CaseFileError", "Expect", "Outcome", "answer_body", "load", "numbers_in", "score"]

DEFAULT_TOLERANCE = 1e-6
_NUMBER = re.compile(
    r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|(?<![\w.,])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?"
)
_SENTENCE_END = re.compile(r"(?<!\b[A-Za-z])(?<!\be\.g)(?<!\bi\.e)[.!?](?:\s|$)")
# How an answer that does not answer says so (a refusal that still completed the task).
_REFUSAL = re.compile(
    r"\b(could not (answer|work out|compute|find)|cannot (answer|compute|be answered)|can't answer|"
    r"not covered|does not cover|do not cover|no document|not answered|nothing to compute|"
    r"I don't know|I do not know|unable to)\b",
    re.I,
)


class CaseFileError(ValueError):
    """The evaluation file cannot be read or one of its lines is not a valid case (the message names it)."""


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: Decimal | None = None
    exact: bool = False
    tolerance: float = Field(DEFAULT_TOLERANCE, ge=0)
    contains: list[str] = []
    excludes: list[str] = []
    max_sentences: int | None = Field(None, ge=1)
    refuse: bool = False

    @model_validator(mode="after")
    def _something(self) -> Expect:
        if self.number is None and not (self.contains or self.excludes or self.refuse or self.max_sentences):
            raise ValueError("expect needs at least one of number, contains, excludes, max_sentences, refuse")
        if self.number is not None and not self.number.is_finite():
            raise ValueError(f"expect.number {self.number} is not a finite number")
        return self


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    expect: Expect
    id: str = ""
    tags: list[str] = []


@dataclass(slots=True)
class Outcome:
    """How one case went: passed or not, and why not, in one line."""

    case: Case
    passed: bool
    why: str = ""
    seconds: float = 0.0
    state: str = ""
    answer: str = ""
    checks: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.case.id,
            "question": self.case.question,
            "tags": self.case.tags,
            "passed": self.passed,
            "why": self.why,
            "seconds": round(self.seconds, 3),
            "state": self.state,
            "answer": self.answer,
        }


def load(path: str | Path) -> list[Case]:
    """The cases of a JSONL file, each given an id (``line-N`` unless it has one). Raises ``CaseFileError``
    naming the file, the line and the field for anything that is not a valid case."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(f"{path}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    cases: list[Case] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            case = Case.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CaseFileError(f"{path}:{number}: not JSON ({exc.msg} at column {exc.colno})") from None
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "case"
            raise CaseFileError(f"{path}:{number}: {where}: {error['msg']}") from None
        case.id = case.id or f"line-{number}"
        if case.id in seen:
            raise CaseFileError(f"{path}:{number}: id {case.id!r} is used twice; give each case its own id")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise CaseFileError(f"{path}: holds no cases; write one JSON object a line")
    return cases


def answer_body(text: str) -> str:
    """The answer without its sources list (``Sources:`` and what follows)."""
    return re.split(r"\n\s*Sources:\s*\n", text, maxsplit=1)[0].strip()


def numbers_in(text: str) -> list[Decimal]:
    """Every number written in ``text``, grouping commas removed (``1,234.5`` -> 1234.5)."""
    found = []
    for match in _NUMBER.finditer(text):
        try:
            found.append(Decimal(match.group().replace(",", "")))
        except InvalidOperation:
            continue
    return found


def sentences(text: str) -> int:
    """How many sentences ``text`` has (lines of a list count as one each)."""
    count = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        count += max(1, len(_SENTENCE_END.findall(line + " ")))
    return count


def score(case: Case, state: str, text: str) -> tuple[bool, str]:
    """Whether an answer (the task's final ``state`` and its text) passes ``case``, and why not."""
    expect = case.expect
    body = answer_body(text)
    completed = state == "completed"
    if expect.refuse:
        if not completed or _REFUSAL.search(body):
            return True, ""
        return False, f"expected a refusal, got an answer: {_clip(body)}"
    if not completed:
        return False, f"task {state}: {_clip(text) or 'no reason given'}"
    low = body.lower()
    if expect.number is not None:
        want = expect.number
        stated = numbers_in(body)
        if expect.exact:
            hit = any(n == want for n in stated)
        else:
            margin = abs(want) * Decimal(repr(expect.tolerance))
            hit = any(abs(n - want) <= max(margin, Decimal("1e-9")) for n in stated)
        if not hit:
            kind = "exactly " if expect.exact else ""
            return False, f"does not state {kind}{want}: {_clip(body)}"
    for wanted in expect.contains:
        if not any(alt.strip().lower() in low for alt in wanted.split("|")):
            return False, f"missing {wanted!r}: {_clip(body)}"
    for unwanted in expect.excludes:
        if unwanted.lower() in low:
            return False, f"mentions {unwanted!r}, which it should not"
    if expect.max_sentences is not None:
        count = sentences(body)
        if count > expect.max_sentences:
            return False, f"{count} sentences, at most {expect.max_sentences} asked"
    return True, ""


def _clip(text: str, limit: int = 100) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"
