"""Okapi BM25 full-text ranking over an in-memory collection, with a title boost and snippets.

Small and dependency-free: the docs server indexes a few hundred documents at startup, so a plain
inverted index (term -> postings) is fast enough and keeps ranking explainable.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

_WORD = re.compile(r"[a-z0-9_]+")

# Only words that never carry meaning in a query; Python keywords such as "with", "for", "in", "if"
# are kept on purpose, since the reference is about exactly those words.
STOPWORDS = frozenset(
    "a an and are as at be by do does how i is it of on or so that the this to was what when which who why".split()
)


def stem(word: str) -> str:
    """A deliberately light suffix stripper (plurals, -ing, -ed) applied to documents and queries alike."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        return word[:-2]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed terms; dunder names count as their core word (``__enter__`` -> ``enter``)."""
    terms = []
    for raw in _WORD.findall(text.lower()):
        word = raw.strip("_")
        if word and word not in STOPWORDS:
            terms.append(stem(word))
    return terms


@dataclass(frozen=True, slots=True)
class Hit:
    doc: int
    score: float


@dataclass(slots=True)
class BM25Index:
    """BM25 over documents added with :meth:`add`; call :meth:`search` once all are in.

    ``title_weight`` repeats title terms that many times (a simple BM25F); ``key_boost`` is added when a
    query term equals one of the document's key terms (e.g. the topic ``with`` for a query about with).
    """

    k1: float = 1.2
    b: float = 0.75
    title_weight: int = 3
    key_boost: float = 1.0
    _postings: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _lengths: list[int] = field(default_factory=list)
    _keys: list[frozenset[str]] = field(default_factory=list)
    _total_length: int = 0

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, text: str, title: str = "", key_terms: Iterable[str] = ()) -> int:
        """Index one document and return its number."""
        doc = len(self._lengths)
        terms = tokenize(text) + tokenize(title) * self.title_weight
        for term, tf in Counter(terms).items():
            self._postings.setdefault(term, []).append((doc, tf))
        self._lengths.append(len(terms))
        self._keys.append(frozenset(stem(k.lower()) for k in key_terms))
        self._total_length += len(terms)
        return doc

    def idf(self, term: str) -> float:
        n, df = len(self._lengths), len(self._postings.get(term, ()))
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def search(self, query: str, limit: int) -> tuple[list[Hit], int]:
        """The best ``limit`` documents for ``query`` and how many matched at all, best first."""
        terms = list(dict.fromkeys(tokenize(query)))
        if not terms or not self._lengths:
            return [], 0
        avg = self._total_length / len(self._lengths)
        scores: dict[int, float] = {}
        for term in terms:
            idf = self.idf(term)
            for doc, tf in self._postings.get(term, ()):
                norm = tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * self._lengths[doc] / avg))
                scores[doc] = scores.get(doc, 0.0) + idf * norm
        for doc in scores:
            matched = sum(1 for t in terms if t in self._keys[doc])
            scores[doc] += self.key_boost * matched
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [Hit(doc, round(score, 4)) for doc, score in ranked[:limit]], len(ranked)


def snippet(text: str, query: str, width: int = 240) -> str:
    """The ``width``-character window of ``text`` holding the most query terms, on word boundaries."""
    wanted = set(tokenize(query))
    words = [(m.start(), stem(m.group().strip("_"))) for m in _WORD.finditer(text.lower())]
    best_start, best_count = 0, -1
    right, count = 0, 0
    for left in range(len(words)):
        while right < len(words) and words[right][0] - words[left][0] < width:
            count += words[right][1] in wanted
            right += 1
        if count > best_count:
            best_start, best_count = words[left][0], count
        count -= words[left][1] in wanted
    start = max(0, best_start - 20)
    if start:
        start = text.find(" ", start) + 1 or start
    piece = " ".join(text[start : start + width].split())
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(text) else ""
    return f"{prefix}{piece}{suffix}"
