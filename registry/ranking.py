"""Free-text discovery: Okapi BM25 over agents' skills.

Each skill is one document made of its name and tags (counted twice: they are short and chosen with care),
description and examples. Text is lowercased, split into words, stripped of stop words and lightly stemmed,
so "loans" finds "loan" and "computing" finds "compute". An agent scores as its best skill.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from a2a.types import AgentSkill

K1 = 1.2
B = 0.75
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by can do does for from how i in is it its me my of on or so than that the their "
    "them then there these this to was what when which who why will with you your into about".split()
)
# Longest first; each (suffix, replacement, minimum stem length left).
_SUFFIXES = (
    ("ational", "ate", 3),
    ("ization", "ize", 3),
    ("isation", "ize", 3),
    ("fulness", "ful", 3),
    ("iveness", "ive", 3),
    ("ations", "ate", 3),
    ("ation", "ate", 3),
    ("ments", "", 4),
    ("ment", "", 4),
    ("ness", "", 4),
    ("ings", "", 3),
    ("ing", "", 3),
    ("ies", "y", 2),
    ("ied", "y", 2),
    ("ers", "er", 3),
    ("ed", "", 3),
    ("es", "", 4),
    ("ly", "", 4),
    ("s", "", 3),
)


def stem(word: str) -> str:
    """A light suffix-stripping stemmer: enough to conflate plurals, tenses and common derivations."""
    for suffix, repl, min_stem in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= min_stem:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            base = word[: -len(suffix)] + repl
            if suffix in ("ing", "ed") and len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]  # "running" -> "run"
            return base.rstrip("e") if suffix in ("ing", "ed", "es") else base.rstrip("e") or base
    return word.rstrip("e") if len(word) > 3 else word


def tokenize(text: str) -> list[str]:
    """Lowercase words without stop words, stemmed."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP]


def skill_terms(skill: AgentSkill) -> list[str]:
    """The terms of one skill's document."""
    strong = " ".join([skill.name, skill.id.replace("-", " "), *skill.tags])
    weak = " ".join([skill.description, *skill.examples])
    terms = tokenize(strong)
    return terms + terms + tokenize(weak)


@dataclass(frozen=True)
class Hit:
    """One ranked document: which agent and skill, and its BM25 score."""

    agent: str
    skill: str
    score: float


class BM25:
    """An index over (agent, skill) documents; build it per query from the agents currently alive."""

    def __init__(self, docs: Sequence[tuple[str, str, list[str]]]) -> None:
        self._docs = [(agent, skill, Counter(terms), len(terms)) for agent, skill, terms in docs]
        self._n = len(self._docs)
        self._avgdl = sum(d[3] for d in self._docs) / self._n if self._n else 0.0
        df: Counter[str] = Counter()
        for _, _, tf, _ in self._docs:
            df.update(tf.keys())
        # The "+1" form of IDF stays positive even for terms in most documents (small corpora).
        self._idf = {t: math.log(1 + (self._n - n + 0.5) / (n + 0.5)) for t, n in df.items()}

    def search(self, query: str) -> list[Hit]:
        """Every document with a positive score, best first (ties by agent name, then skill id)."""
        terms = set(tokenize(query))
        hits = []
        for agent, skill, tf, length in self._docs:
            score = 0.0
            for term in terms:
                f = tf.get(term, 0)
                if f:
                    norm = f * (K1 + 1) / (f + K1 * (1 - B + B * length / (self._avgdl or 1)))
                    score += self._idf[term] * norm
            if score > 0:
                hits.append(Hit(agent, skill, score))
        hits.sort(key=lambda h: (-h.score, h.agent, h.skill))
        return hits

    def rank_agents(self, query: str) -> list[Hit]:
        """The best-scoring skill of each matching agent, best agent first."""
        best: dict[str, Hit] = {}
        for hit in self.search(query):
            best.setdefault(hit.agent, hit)
        return list(best.values())
