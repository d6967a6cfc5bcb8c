"""The reviewer's checks that an answer answers what was asked, in the form asked, from distinct sources.
Each returns an :class:`~agents.specialists.checks.Outcome` whose feedback the writer's revision acts on
(:mod:`agents.specialists.revision`):

- form: the length asked ("in two sentences", "briefly") is kept, a list is a list;
- sides: a comparison says something about each of the things compared;
- on_topic: the answer names what the question asks about, and no sentence is about something else;
- distinct: no sentence is said twice and no quote is cited under two markers.
"""

from __future__ import annotations

from podium.agents.specialists.checks import Outcome
from podium.agents.specialists.models import Check, FeedbackItem
from podium.agents.text import forms, relevance
from podium.agents.text.drafts import Draft, is_claim
from podium.agents.text.words import markers, shorten, strip_markers

__all__ = ["distinct", "form", "on_topic", "sides"]


def form(draft: Draft, question: str) -> Outcome:
    shape = forms.form(question)
    claims = [s for s in draft.sentences if is_claim(s)]
    problems = []
    if shape.max_sentences and len(claims) > shape.max_sentences:
        problems.append(FeedbackItem(
            check="form", found=str(len(claims)), expected=str(shape.max_sentences),
            message=f"the question asks for at most {shape.max_sentences} sentence(s) and the draft has "
            f"{len(claims)}: keep the {shape.max_sentences} that answer it most directly",
        ))  # fmt: skip
    if shape.kind == "list" and len(claims) > 1:
        items = [s for s in draft.sentences if s.lstrip().startswith(("-", "*", "•"))]
        if len(items) < len(claims):
            problems.append(FeedbackItem(
                check="form", expected="list",
                message="the question asks for a list: give each item on its own line starting with “- ”",
            ))  # fmt: skip
    detail = f"{shape.describe()} asked; {len(claims)} sentence(s)"
    return Outcome(Check(name="form", passed=not problems, detail=detail), problems)


def _cites(draft: Draft, sentence: str, doc_id: str) -> bool:
    return any((source := draft.source(m)) is not None and source.doc_id == doc_id for m in markers(sentence))


def sides(draft: Draft, question: str) -> Outcome:
    shape = forms.form(question)
    if shape.kind != "compare":
        return Outcome(Check(name="sides", passed=True, detail="not a comparison"), [])
    problems = []
    for side in shape.sides:
        home = relevance.topic_doc(side)
        if not any(
            relevance.names(strip_markers(s), side) or _cites(draft, s, home) for s in draft.sentences
        ):
            other = next(t for t in shape.sides if t != side)
            problems.append(FeedbackItem(
                check="sides", terms=[side],
                message=f"the question compares {' and '.join(shape.sides)}, but the draft says nothing about "
                f"{side}: add what the sources say about {side}, next to {other}",
            ))  # fmt: skip
    detail = f"{len(shape.sides) - len(problems)} of {len(shape.sides)} sides covered"
    return Outcome(Check(name="sides", passed=not problems, detail=detail), problems)


def on_topic(draft: Draft, question: str) -> Outcome:
    """The answer is about what was asked: when the question names topics, some claim names one, and no
    cited claim is about a neighbouring topic instead (it names other statements or constructs, none of
    the asked ones: "async for" in an answer about "async with")."""
    asked = relevance.topics(question)
    claims = [s for s in draft.sentences if is_claim(s) and markers(s)]
    if not asked or not claims:
        return Outcome(Check(name="on_topic", passed=True, detail="no topic to check against"), [])
    homes = {relevance.topic_doc(t) for t in asked}

    def names_asked(sentence: str) -> bool:
        plain = strip_markers(sentence)
        return any(relevance.names(plain, t) for t in asked) or any(_cites(draft, sentence, h) for h in homes)

    problems = []
    if not any(names_asked(s) for s in claims):
        problems.append(FeedbackItem(
            check="on_topic", terms=asked,
            message=f"the question asks about {' and '.join(asked)}, but no sentence of the draft names it: "
            "lead with the sentence that says what it is or does",
        ))  # fmt: skip
    for sentence in claims:
        related = {r for t in asked for r in relevance.RELATED.get(t, ())}
        others = [t for t in relevance.topics(strip_markers(sentence)) if t not in asked and t not in related]
        # a topic's document covers its neighbours too ("async for" in "async"): the sentence must name it
        if others and not any(relevance.names(strip_markers(sentence), t) for t in asked):
            problems.append(FeedbackItem(
                check="on_topic", sentence=sentence, terms=others,
                message=f"“{shorten(strip_markers(sentence), 70)}” is about {' and '.join(others)}, not "
                f"{' and '.join(asked)}: remove it",
            ))  # fmt: skip
    detail = f"{len(claims) - len(problems)} of {len(claims)} cited claims on topic"
    return Outcome(Check(name="on_topic", passed=not problems, detail=detail), problems)


def distinct(draft: Draft) -> Outcome:
    problems = []
    seen: dict[str, str] = {}
    for sentence in draft.sentences:
        plain = " ".join(strip_markers(sentence).split()).lower()
        if plain in seen:
            problems.append(FeedbackItem(
                check="distinct", sentence=sentence,
                message=f"“{shorten(strip_markers(sentence), 70)}” is said twice: keep it once",
            ))  # fmt: skip
        seen.setdefault(plain, sentence)
    quotes: dict[str, int] = {}
    for source in sorted(draft.sources, key=lambda s: s.marker):
        key = " ".join(source.quote.split()).lower()
        if not key:
            continue
        if key in quotes and any(str(source.marker) in markers(s) for s in draft.sentences):
            problems.append(FeedbackItem(
                check="distinct", found=str(source.marker), expected=str(quotes[key]),
                message=f"sources [{quotes[key]}] and [{source.marker}] quote the same sentence: cite it once, "
                f"as [{quotes[key]}]",
            ))  # fmt: skip
        quotes.setdefault(key, source.marker)
    detail = f"{len(problems)} repeated sentence(s) or source(s)"
    return Outcome(Check(name="distinct", passed=not problems, detail=detail), problems)
