"""Applying review feedback to a draft without a model: one rule per kind of check, each reporting
what it changed (or why it could not), so a caller sees every point addressed or named as open.

- citations: cite the sentence from the note or source that supports it, else remove the sentence;
- coverage: add the notes that hold the missing terms;
- length: drop the sentences least related to the question, or add unused notes;
- numbers / arithmetic: replace the wrong value with the expected one;
- form: keep the first sentences up to the length asked, or make the draft a list;
- sides: add a note about the side of a comparison the draft leaves out;
- on_topic: remove the sentence about something else, or lead with a note naming the topic;
- distinct: cite a repeated quote by its first marker, remove a repeated sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from podium.agents.specialists.models import Change, FeedbackItem, Note
from podium.agents.text import relevance
from podium.agents.text.drafts import Draft, cite, is_claim
from podium.agents.text.words import (
    key_terms,
    markers,
    overlap,
    sentences,
    shorten,
    strip_markers,
    word_count,
)

SUPPORT = 0.5  # share of a sentence's key terms a note must hold to support it

_KINDS = [
    ("citations", re.compile(r"cit|source|reference|unsupported", re.I)),
    ("coverage", re.compile(r"cover|missing|mention|address|part of the question", re.I)),
    ("length", re.compile(r"long|short|words|length", re.I)),
    ("numbers", re.compile(r"number|figure|value|inconsistent|contradict", re.I)),
]


def kind_of(item: FeedbackItem) -> str:
    if item.check != "general":
        return item.check
    return next((kind for kind, pattern in _KINDS if pattern.search(item.message)), "general")


def revise(draft: Draft, feedback: list[FeedbackItem], notes: list[Note], question: str) -> list[Change]:
    """Apply ``feedback`` to ``draft`` in place; one :class:`Change` per point."""
    rules: dict[str, Callable[[Draft, FeedbackItem, list[Note], str], str | None]] = {
        "citations": _citations,
        "coverage": _coverage,
        "length": _length,
        "numbers": _numbers,
        "arithmetic": _numbers,
        "form": _form,
        "sides": _sides,
        "on_topic": _on_topic,
        "distinct": _distinct,
    }
    changes = []
    for item in feedback:
        rule = rules.get(kind_of(item))
        done = rule(draft, item, notes, question) if rule else None
        if done is None:
            why = "no rule applies offline" if rule is None else "nothing in the notes could fix it"
            changes.append(Change(feedback=item.message, change=f"not addressed: {why}", addressed=False))
        else:
            changes.append(Change(feedback=item.message, change=done, addressed=True))
    draft.paragraphs = [p for p in draft.paragraphs if p]
    return changes


def _support(draft: Draft, sentence: str, notes: list[Note]) -> list[int]:
    """Markers of the best note (or existing source) holding most of ``sentence``'s key terms."""
    wanted = key_terms(strip_markers(sentence))
    best: tuple[float, list[int]] = (0.0, [])
    for note in notes:
        score = overlap(wanted, note.text + " " + " ".join(c.quote for c in note.citations))
        if score > best[0] and note.citations:
            best = (score, [draft.marker_for(c.doc_id, c.quote) for c in note.citations])
    for source in draft.sources:
        score = overlap(wanted, source.quote)
        if score > best[0]:
            best = (score, [source.marker])
    return best[1] if best[0] >= SUPPORT else []


def _citations(draft: Draft, item: FeedbackItem, notes: list[Note], question: str) -> str | None:
    targets = [item.sentence] if item.sentence in draft.sentences else []
    targets = targets or [s for s in draft.sentences if is_claim(s) and not markers(s)]
    done = []
    for sentence in targets:
        assert sentence is not None
        numbers = _support(draft, sentence, notes)
        if numbers:
            draft.replace(sentence, cite(sentence, numbers))
            done.append(f"cited {''.join(f'[{n}]' for n in numbers)} for “{shorten(sentence, 60)}”")
        else:
            draft.replace(sentence, None)
            done.append(f"removed “{shorten(sentence, 60)}”: no note supports it")
    return "; ".join(done) if done else None


def _unused(draft: Draft, notes: list[Note]) -> list[Note]:
    body = " ".join(strip_markers(s) for s in draft.sentences)
    return [n for n in notes if strip_markers(n.text) not in body]


def _add(draft: Draft, note: Note) -> str:
    numbers = [draft.marker_for(c.doc_id, c.quote) for c in note.citations]
    added = [cite(s, numbers) if numbers else s for s in sentences(strip_markers(note.text))]
    draft.paragraphs.append(added)
    return " ".join(added)


def _coverage(draft: Draft, item: FeedbackItem, notes: list[Note], question: str) -> str | None:
    terms = item.terms or key_terms(item.message)
    candidates = sorted(_unused(draft, notes), key=lambda n: -overlap(terms, n.text))
    if not terms or not candidates or overlap(terms, candidates[0].text) == 0:
        return None
    return f"added “{shorten(_add(draft, candidates[0]), 80)}” to cover {', '.join(terms)}"


def _length(draft: Draft, item: FeedbackItem, notes: list[Note], question: str) -> str | None:
    words = word_count(draft.body)
    bound = [int(n) for n in re.findall(r"\b(\d+)\s*words?\b", item.message)]
    high = item.max_words or (bound[-1] if bound and "long" in item.message.lower() else None)
    low = item.min_words or (bound[0] if bound and "short" in item.message.lower() else None)
    if high is not None and words > high:
        wanted = key_terms(question)
        dropped = 0
        while word_count(draft.body) > high and len(draft.sentences) > 1:
            worst = min(reversed(draft.sentences), key=lambda s: overlap(wanted, s))
            draft.replace(worst, None)
            draft.paragraphs = [p for p in draft.paragraphs if p]
            dropped += 1
        return f"removed {dropped} sentence(s) least related to the question: {words} → {word_count(draft.body)} words"
    if low is not None and words < low:
        added = 0
        for note in _unused(draft, notes):
            if word_count(draft.body) >= low:
                break
            _add(draft, note)
            added += 1
        return f"added {added} note(s): {words} → {word_count(draft.body)} words" if added else None
    return None


def _numbers(draft: Draft, item: FeedbackItem, notes: list[Note], question: str) -> str | None:
    if not item.expected or not item.found:
        return None
    found = re.compile(rf"(?<![\d.]){re.escape(item.found)}(?![\d])")
    targets = [item.sentence] if item.sentence in draft.sentences else draft.sentences
    changed = 0
    for sentence in targets:
        if sentence and found.search(sentence):
            draft.replace(sentence, found.sub(item.expected, sentence))
            changed += 1
    return f"changed {item.found} to {item.expected} in {changed} sentence(s)" if changed else None


def _form(draft: Draft, item: FeedbackItem, notes: list[Note], question: str) -> str | None:
    if item.expected == "list":
        items = [s if s.lstrip().startswith(("-", "*", "•")) else f"- {s}" for s in draft.sentences]
        draft.paragraphs = [[s] for s in items]
        return f"made the draft a list of {len(items)} item(s)"
    if not item.expected or not item.expected.isdigit():
        return None
    keep = int(item.expected)
    claims = [s for s in draft.sentences if is_claim(s)]
    for sentence in claims[keep:]:  # the first sentences are the ones that answer (the notes' order)
        draft.replace(sentence, None)
    draft.paragraphs = [p for p in draft.paragraphs if p]
    return f"kept the first {keep} sentence(s), removed {max(0, len(claims) - keep)}"


def _sides(draft: Draft, item: FeedbackItem, notes: list[Note], question: str) -> str | None:
    side = item.terms[0] if item.terms else ""
    home = relevance.topic_doc(side)
    about = [
        n for n in _unused(draft, notes)
        if any(c.doc_id == home for c in n.citations) or relevance.names(n.text, side)
    ]  # fmt: skip
    if not side or not about:
        return None
    added = _add(draft, about[0])
    return f"added “{shorten(added, 80)}” about {side}"


def _on_topic(draft: Draft, item: FeedbackItem, notes: list[Note], question: str) -> str | None:
    if item.sentence and item.sentence in draft.sentences:
        draft.replace(item.sentence, None)
        return f"removed “{shorten(strip_markers(item.sentence), 60)}”, which is about something else"
    asked = relevance.topics(question) or item.terms
    lead = next((n for n in _unused(draft, notes) if any(relevance.names(n.text, t) for t in asked)), None)
    if lead is None:
        return None
    added = _add(draft, lead)
    draft.paragraphs.insert(0, draft.paragraphs.pop())  # it answers: it goes first
    return f"led with “{shorten(added, 80)}”"


def _distinct(draft: Draft, item: FeedbackItem, notes: list[Note], question: str) -> str | None:
    if item.found and item.expected:
        old, new = f"[{item.found}]", f"[{item.expected}]"
        changed = 0
        for sentence in draft.sentences:
            if old in sentence:
                fixed = sentence.replace(old, "" if new in sentence else new).replace(" .", ".")
                draft.replace(sentence, fixed)
                changed += 1
        return (
            f"cited [{item.expected}] instead of [{item.found}] in {changed} sentence(s)" if changed else None
        )
    if item.sentence:
        plain = " ".join(strip_markers(item.sentence).split()).lower()
        copies = [s for s in draft.sentences if " ".join(strip_markers(s).split()).lower() == plain]
        for extra in copies[1:]:
            draft.replace(extra, None)
        draft.paragraphs = [p for p in draft.paragraphs if p]
        return (
            f"removed {len(copies) - 1} repeated copy(ies) of “{shorten(plain, 60)}”"
            if len(copies) > 1
            else None
        )
    return None
