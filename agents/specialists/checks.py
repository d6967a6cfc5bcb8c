"""The reviewer's objective checks on a cited draft. Each returns a :class:`Check` and one actionable
:class:`FeedbackItem` per problem, shaped so the writer can apply it (the sentence concerned, the
missing terms, the expected value).

- citations: every claim (a sentence with factual content) carries a marker that resolves to a source;
- coverage: each part of the question has at least half of its key terms in the draft;
- length: the body's word count is within bounds;
- numbers: one quantity never has two values (e.g. "the payment is 1,199.10" ... "a payment of 1,250");
- arithmetic: a stated computation ("15% of 240 is 36") agrees with the calc server.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from podium.agents.specialists.base import Recorder
from podium.agents.specialists.models import Check, FeedbackItem
from podium.agents.text import quantities, relevance
from podium.agents.text.drafts import Draft, is_claim
from podium.agents.text.words import key_terms, markers, overlap, shorten, strip_markers, word_count

COVERED = 0.5
_PARTS = re.compile(
    r"[?;]|\.\s|,?\s+(?:and|also|as well as)\s+(?=(?:how|what|why|when|where|which|who|whether|does|do|is|are|can|give|explain|list)\b)",
    re.I,
)
_VALUE = r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?"  # 1,199.10 or 40; never the comma after "40,"
_QUANTITY = re.compile(
    rf"((?:[A-Za-z][\w'’-]*\s+){{1,5}}?)(?:is|are|was|were|of|=|:|equals|totals?|comes to|at)\s+\$?({_VALUE})(%?)"
)
_STATED = re.compile(
    rf"^(?P<expr>.+?)\s*(?:=|\bis\b|\bequals\b|\bcomes to\b|\bgives\b)\s*\$?(?P<value>{_VALUE})\s*%?(?!\s*[-+*/^x×]\s*\d)"
)


@dataclass(slots=True)
class Outcome:
    check: Check
    feedback: list[FeedbackItem]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=5e-3, abs_tol=5e-3)


def citations(draft: Draft) -> Outcome:
    problems = []
    claims = [s for s in draft.sentences if is_claim(s)]
    for sentence in claims:
        found = markers(sentence)
        if not found:
            problems.append(FeedbackItem(
                check="citations", sentence=sentence,
                message=f"“{shorten(sentence)}” states a fact but cites no source: add the marker of the source that supports it, or remove the claim",
            ))  # fmt: skip
            continue
        dangling = [m for m in found if m.isdigit() and draft.source(m) is None]
        if dangling:
            problems.append(FeedbackItem(
                check="citations", sentence=sentence,
                message=f"“{shorten(sentence)}” cites {', '.join(f'[{m}]' for m in dangling)}, which the sources list does not define",
            ))  # fmt: skip
    detail = f"{len(claims) - len(problems)} of {len(claims)} claims cited"
    return Outcome(Check(name="citations", passed=not problems and bool(claims), detail=detail if claims else "no claims found"),
                   problems or ([] if claims else [FeedbackItem(check="citations", message="the draft makes no cited claims: write the answer from the cited notes")]))  # fmt: skip


def question_parts(question: str) -> list[str]:
    return [p.strip() for p in _PARTS.split(question) if p and len(key_terms(p)) > 0]


def coverage(draft: Draft, question: str) -> Outcome:
    parts = question_parts(question)
    if not parts:
        return Outcome(Check(name="coverage", passed=True, detail="no question given to check against"), [])
    body = strip_markers(draft.body)
    problems = []
    for part in parts:
        wanted = relevance.subject_terms(part)  # "compare", "in two sentences" say how, not what
        if overlap(wanted, body) < COVERED:
            missing = [t for t in wanted if overlap([t], body) == 0]
            problems.append(FeedbackItem(
                check="coverage", terms=missing,
                message=f"the question asks “{shorten(part)}”, but the draft never mentions: {', '.join(missing)}",
            ))  # fmt: skip
    detail = f"{len(parts) - len(problems)} of {len(parts)} parts of the question covered"
    return Outcome(Check(name="coverage", passed=not problems, detail=detail), problems)


def length(draft: Draft, low: int, high: int) -> Outcome:
    words = word_count(strip_markers(draft.body))
    detail = f"{words} words (bounds {low}-{high})"
    if words > high:
        item = FeedbackItem(
            check="length", max_words=high, message=f"the draft is too long: {words} words, at most {high}"
        )
    elif words < low:
        item = FeedbackItem(
            check="length", min_words=low, message=f"the draft is too short: {words} words, at least {low}"
        )
    else:
        return Outcome(Check(name="length", passed=True, detail=detail), [])
    return Outcome(Check(name="length", passed=False, detail=detail), [item])


@dataclass(frozen=True, slots=True)
class _Mention:
    value: float
    raw: str
    sentence: str
    context: frozenset[str]  # the clause's other numbers: "at 5% the payment is X" is another scenario


def _mentions(draft: Draft) -> dict[tuple[str, ...], list[_Mention]]:
    seen: dict[tuple[str, ...], list[_Mention]] = {}
    for sentence in draft.sentences:
        for clause in re.split(r";|,\s+(?:while|whereas|but)\b", strip_markers(sentence)):
            numbers = re.findall(_VALUE, clause)
            for match in _QUANTITY.finditer(clause):
                key = tuple(key_terms(match.group(1))[-2:])
                context = frozenset(n for n in numbers if n != match.group(2))
                if key:
                    seen.setdefault(key, []).append(
                        _Mention(_number(match.group(2)), match.group(2), sentence, context)
                    )
    return seen


def numbers(draft: Draft, quotes: str) -> Outcome:
    seen = _mentions(draft)
    problems = []
    for key, mentions in seen.items():
        first = mentions[0]
        for other in mentions[1:]:
            if _same(other.value, first.value) or (
                first.context and other.context and first.context != other.context
            ):
                continue
            quoted = [m for m in (first, other) if m.raw in quotes]
            right = quoted[0] if len(quoted) == 1 else None
            wrong = other if right is None or right is first else first
            problems.append(FeedbackItem(
                check="numbers", sentence=wrong.sentence, expected=right.raw if right else None, found=wrong.raw,
                message=f"“{' '.join(key)}” is given as both {first.raw} and {other.raw}: use one value"
                + (f" ({right.raw}, as the source says)" if right else ", the one the sources support"),
            ))  # fmt: skip
    detail = f"{len(seen)} quantities, {len(problems)} contradiction(s)"
    return Outcome(Check(name="numbers", passed=not problems, detail=detail), problems)


async def arithmetic(draft: Draft, tools: Recorder) -> Outcome:
    checked, problems = 0, []
    for sentence in draft.sentences:
        stated = _STATED.search(strip_markers(sentence))
        computation = quantities.find(stated.group("expr")) if stated else None
        if stated is None or computation is None or computation.tool not in ("evaluate", "statistics"):
            continue
        tool = f"calc__{computation.tool}"
        if not tools.has(tool):
            continue
        result = await tools.call(tool, computation.arguments)
        if result.is_error or not isinstance(result.data, dict):
            continue
        key = (computation.wanted or ["mean"])[0] if computation.tool == "statistics" else "value"
        value = result.data.get(key)
        if not isinstance(value, int | float):
            continue
        checked += 1
        if not _same(float(value), _number(stated.group("value"))):
            right = f"{value:.10g}"
            problems.append(FeedbackItem(
                check="arithmetic", sentence=sentence, expected=right, found=stated.group("value"),
                message=f"{computation.label} is {right}, not {stated.group('value')} (checked with {tool})",
            ))  # fmt: skip
    detail = f"{checked} stated computation(s) checked, {len(problems)} wrong"
    return Outcome(Check(name="arithmetic", passed=not problems, detail=detail), problems)
