"""Plain-text helpers the specialists share: key terms, sentences, quotes and citation markers.

Terms are the docs server's own (``mcp_servers.bm25.tokenize``: lower-cased, light stemming), so what
the researcher calls a match is what the search engine called one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from podium.mcp_servers.bm25 import tokenize

# Words that make a sentence a question or an instruction but say nothing about its subject.
FILLER = frozenset(
    tokenize(
        "about according also can cite could describe detail did document documentation explain find "
        "give has have language me mean more much please python reference say says section sections "
        "should show source sources tell us we will work would you your there their them they its "
        "into from between answer question"
    )
)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)\]]*\s+(?=[\"“(\[]?[A-Z0-9_])")
_MARKER = re.compile(r"\[([^\[\]\n]{1,80})\]")
_SPACE = re.compile(r"\s+")
_PROSE = re.compile(r"^[\"“(]?[A-Z0-9_*\"].*[a-z].*[.!?][\"”’)]*$")  # a sentence, not a heading or code
_NOT_PROSE = re.compile(r"::=|[-=*~^]{4,}|^>>>|\w+ = \w+\(|[{};]\s*$")


def terms(text: str) -> list[str]:
    """Search terms of ``text`` (stemmed, stopwords dropped), in order, without duplicates."""
    return list(dict.fromkeys(tokenize(text)))


def key_terms(text: str) -> list[str]:
    """The terms that name a subject: :func:`terms` without question and instruction filler."""
    return [t for t in terms(text) if t not in FILLER and not t.isdigit()]


def squash(text: str) -> str:
    """``text`` on one line with single spaces."""
    return _SPACE.sub(" ", text).strip()


def sentences(text: str) -> list[str]:
    """Sentences of prose ``text``; line breaks inside a paragraph are joined, blank lines and list
    items always end one."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)", text):
        block = squash(block)
        if block:
            out.extend(s.strip() for s in _SENTENCE_END.split(block) if s.strip())
    return out


def markers(sentence: str) -> list[str]:
    """Citation markers in ``sentence``: ``[1]``, ``[2, 3]`` and ``[with]`` give ``1``, ``2``, ``3``, ``with``."""
    found: list[str] = []
    for inner in _MARKER.findall(sentence):
        for item in inner.split(","):
            item = item.strip()
            if item and " " not in item:
                found.append(item)
    return found


def strip_markers(sentence: str) -> str:
    """``sentence`` without its citation markers."""
    return squash(_MARKER.sub(lambda m: "" if markers(m.group(0)) else m.group(0), sentence)).replace(
        " .", "."
    )


def overlap(wanted: Iterable[str], text: str) -> float:
    """The share of ``wanted`` terms that occur in ``text`` (0 when nothing is wanted)."""
    want = set(wanted)
    if not want:
        return 0.0
    return len(want & set(tokenize(text))) / len(want)


def best_sentences(text: str, query: str, limit: int = 2, max_chars: int = 400) -> list[str]:
    """The sentences of ``text`` that best match ``query`` (most distinct key terms, then the earliest),
    as exact quotes: each is a substring of ``text`` up to whitespace. Grammar rules, headings and
    very short lines are skipped."""
    wanted = set(key_terms(query)) or set(terms(query))
    scored: list[tuple[float, int, str]] = []
    for i, sentence in enumerate(sentences(text)):
        if len(sentence) < 30 or not _PROSE.search(sentence) or _NOT_PROSE.search(sentence):
            continue
        words = set(tokenize(sentence))
        hits = len(wanted & words)
        if hits:
            # most wanted terms first; then dense sentences, early ones (definitions come first) and
            # plain prose over "see also" markup
            score = hits + 0.5 * hits / (1 + len(words) / 12) + 0.5 / (1 + i) - 0.5 * ("**" in sentence)
            scored.append((score, -i, sentence[:max_chars]))
    scored.sort(reverse=True)
    return [s for _, _, s in scored[:limit]]


def word_count(text: str) -> int:
    return len(re.findall(r"\b[\w'’-]+\b", text))


def shorten(text: str, limit: int = 80) -> str:
    text = squash(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
