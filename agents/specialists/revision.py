"""Applying review feedback to a draft without a model: one rule per kind of check, each reporting
what it changed (or why it could not), so a caller sees every point addressed or named as open.

- citations: cite the sentence from the note or source that supports it, else remove the sentence;
- coverage: add the notes that hold the missing terms;
- length: drop the sentences least related to the question, or add unused notes;
- numbers / arithmetic: replace the wrong value with the expected one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from podium.agents.specialists.models import Change, FeedbackItem, Note
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
