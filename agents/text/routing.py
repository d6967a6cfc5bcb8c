"""What kind of task a message is, so a specialist can refuse work that is not its own and say which
agent would fit. Deterministic on purpose: the same message is routed the same way with or without a
model, and a rejection can always name its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from podium.agents.text import quantities, units
from podium.agents.text.words import key_terms

Kind = Literal["compute", "review", "revise", "write", "research", "creative"]

AGENT_FOR: dict[Kind, str | None] = {
    "compute": "analyst",
    "research": "researcher",
    "write": "writer",
    "revise": "writer",
    "review": "reviewer",
    "creative": None,
}
WHAT: dict[Kind, str] = {
    "compute": "a calculation",
    "research": "a research question",
    "write": "a request to write up notes",
    "revise": "a request to revise a draft",
    "review": "a request to review a draft",
    "creative": "a creative-writing request",
}

_CREATIVE = re.compile(
    r"\b(poem|poetry|haiku|limerick|sonnet|song|lyrics|story|stories|joke|fiction|rap)\b", re.I
)
_REVIEW = re.compile(
    r"\b(review|grade|assess|evaluate this|critique|check (this|the|my) (draft|answer)|does (this|the|my) (draft|answer) pass)\b",
    re.I,
)
_REVISE = re.compile(r"\b(revise|rewrite|edit|improve) (this|the|my|a)\b", re.I)
_WRITE = re.compile(r"\b(write|summari[sz]e|draft|compose|turn (these|the) notes)\b", re.I)
# a computation that is only part of a question about something else ("how does Python compute 2**10?")
_MAX_EXTRA_TERMS = 1
_MATH_WORDS = frozenset(
    key_terms(
        "what how much many calculate compute work out figure evaluate result value equal total sum number get"
    )
)
# Words of everyday money questions ("a $1200 laptop is 15% off, what do I pay?"), which say nothing beyond the
# computation; an everyday computation may come with up to two other words (the laptop, the rent).
_EVERYDAY_WORDS = frozenset(
    key_terms(
        "price prices cost costs pay paid bill item dollars euros pounds new final total off discount sale save "
        "saving tax vat tip tips gratuity rise rose increase increases raise goes up went more less after before "
        "with including included altogether percent percentage ratio share buy bought spend my our i me for "
        "on at will salary wage income earn rent fee fare"
    )
)
_MAX_EVERYDAY_EXTRA = 2
# A question about programming is for the researcher, whatever numbers it mentions.
_CODE = re.compile(
    r"\b(python|code|coding|program\w*|function|script|implement\w*|loop|variable|algorithm|syntax)\b", re.I
)


_ASKS_AMOUNT = re.compile(
    r"\b(how (?:many|much|long|far|fast|often)|what (?:is|was) the (?:total|cost|price|speed))\b", re.I
)
_MONEY = re.compile(r"[$€£]\s?\d|\d\s?(?:dollars|euros|pounds sterling|cents)\b", re.I)
# a counting story: things given, left, shared ("Tom has some apples and gives a few away")
_COUNT_STORY = re.compile(r"\b(left|remain\w*|gives?|gave|shares?|shared|altogether|each|in total)\b", re.I)


@dataclass(frozen=True, slots=True)
class Route:
    kind: Kind
    computation: quantities.Computation | None = None

    @property
    def agent(self) -> str | None:
        return AGENT_FOR[self.kind]

    @property
    def what(self) -> str:
        return WHAT[self.kind]


def classify(text: str, data: dict[str, Any] | None = None) -> Route:
    """The kind of task ``text`` (with its structured ``data``) asks for."""
    data = data or {}
    if data.get("feedback") and data.get("draft"):
        return Route("revise")
    if data.get("notes"):
        return Route("write")
    if data.get("draft") and not data.get("notes"):
        return Route("review")
    if _CREATIVE.search(text) and _WRITE.search(text):
        return Route("creative")
    computation = quantities.find(text)
    if computation is not None and is_mainly_computation(text, computation):
        return Route("compute", computation)
    if computation is None and looks_quantitative(text):
        return Route("compute")  # the analyst says what it read and what it could not
    if _REVIEW.search(text):
        return Route("review")
    if _REVISE.search(text):
        return Route("revise")
    if _WRITE.search(text):
        return Route("creative" if _CREATIVE.search(text) else "write")
    return Route("research", computation)


def is_mainly_computation(text: str, computation: quantities.Computation) -> bool:
    """True when, apart from the computation, the task says little but "what is" / "calculate"."""
    if computation.operation in ("loan", "growth", "statistics"):
        return True
    if computation.word:  # a word problem's other words are its story (a train, a recipe)
        return not _CODE.search(text)
    if computation.everyday:
        if _CODE.search(text):
            return False
        extra = [t for t in key_terms(quantities.normalise(text)) if t not in _MATH_WORDS | _EVERYDAY_WORDS]
        return len(extra) <= _MAX_EVERYDAY_EXTRA
    extra = [
        t for t in key_terms(quantities.leftover(text, computation)) if t not in _MATH_WORDS | _EVERYDAY_WORDS
    ]
    return len(extra) <= _MAX_EXTRA_TERMS


def looks_quantitative(text: str) -> bool:
    """A question about amounts in everyday words that no finder could read ("a train travels 300 km in
    a while…", "how many apples are left?"): the analyst's to decline plainly, not the researcher's."""
    if _CODE.search(text) or not _ASKS_AMOUNT.search(text):
        return False
    norm = quantities.normalise(text)
    return bool(units.quantities(norm) or _MONEY.search(text) or _COUNT_STORY.search(text))


def misrouted(route: Route, agent: str) -> str:
    """The reason a task of ``route``'s kind is not ``agent``'s, naming the agent that would fit."""
    if route.agent is None:
        return (
            f"this is {route.what}, which no Podium specialist takes on: they research documentation, "
            "compute, write cited answers from notes and review drafts"
        )
    return f"this is {route.what}; the {route.agent} agent handles that, not the {agent}"
