"""The form a documentation question asks its answer to take: a definition, a how-to, a comparison of two
things side by side, a list, and how long ("in two sentences", "briefly"). The writer follows it and the
reviewer checks it, both from this one reading of the question."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from podium.agents.text import relevance

__all__ = ["Form", "form"]

Kind = Literal["definition", "howto", "compare", "list"]
BRIEF = 2  # sentences in a "brief" answer
_COUNTS = {"one": 1, "a": 1, "a single": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_SENTENCES = re.compile(r"\bin\s+(one|a single|a|two|three|four|five|\d+)\s+sentences?\b", re.I)
_BRIEF = re.compile(
    r"\b(briefly|in brief|in short|short answer|concisely|tl;?dr|quick(?:ly)? summar\w*)\b", re.I
)
_COMPARE = re.compile(r"\b(compare|comparison|contrast|differences?\s+between|differ|versus|vs\.?)\b", re.I)
_LIST = re.compile(
    r"^\s*(?:please\s+)?(?:list|name|enumerate)\b|\bwhat are the\b.*\b(types|kinds|operators|ways|forms|values)\b",
    re.I,
)
_HOWTO = re.compile(r"\bhow\s+(?:do|can|should|would)\s+(?:i|you|we|one)\b|\bhow to\b", re.I)


@dataclass(frozen=True, slots=True)
class Form:
    kind: Kind = "definition"
    max_sentences: int | None = None  # asked for: "in two sentences", "briefly"
    sides: list[str] = field(default_factory=list)  # the two things a comparison compares

    def describe(self) -> str:
        what = {
            "definition": "a definition",
            "howto": "how to do it",
            "compare": "a comparison",
            "list": "a list",
        }
        text = what[self.kind] + (f" of {' and '.join(self.sides)}" if self.sides else "")
        if self.max_sentences:
            text += f" in at most {self.max_sentences} sentence{'s' if self.max_sentences > 1 else ''}"
        return text


def form(question: str) -> Form:
    """How ``question`` wants to be answered."""
    count = _SENTENCES.search(question)
    limit = None
    if count:
        word = count.group(1).lower()
        limit = int(word) if word.isdigit() else _COUNTS[word]
    elif _BRIEF.search(question):
        limit = BRIEF
    topics = relevance.topics(question)
    if _COMPARE.search(question) and len(topics) >= 2:
        return Form("compare", limit, topics[:2])
    if _LIST.search(question):
        return Form("list", limit)
    if _HOWTO.search(question):
        return Form("howto", limit)
    return Form("definition", limit)
