"""How directly a passage answers a documentation question: the question's topics, and the sentences of a
document ranked so the one that defines the topic or states its rule comes first.

A topic is what the question is about: a quoted phrase (``'async with'``), a Python keyword named as a
statement, operator or expression ("the global statement", "the is operator", "break and continue"), or a
known compound ("list comprehension"). A sentence scores for the question's key terms it holds, more for
naming a topic, more again for defining it ("The "global" statement is a declaration …"), for standing
early in the section headed by the topic, and less for being about a neighbouring topic: a sentence that
quotes other keywords than the question's ("async for" when asked about "async with") is beside the
point, however many words it shares.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from podium.agents.text.words import key_terms, sentences
from podium.mcp_servers.bm25 import tokenize

__all__ = ["FORM_TERMS", "Scored", "names", "rank", "subject_terms", "topic_doc", "topics"]

# the document of the Python reference that is about a topic, where its id is not the topic itself
_TOPIC_DOCS = {
    "async with": "async",
    "async for": "async",
    "async def": "async",
    "await": "await",
    "def": "function",
    "is": "comparisons",
    "list comprehension": "lists",
    "dict comprehension": "dict",
    "dictionary comprehension": "dict",
    "augmented assignment": "augassign",
    "context manager": "context-managers",
    "except": "try",
    "finally": "try",
    "elif": "if",
    "format string": "formatstrings",
}
# topics that belong to another: a context manager is what a "with" statement uses
RELATED = {
    "with": {"context manager", "async with"},
    "async with": {"context manager", "with"},
    "context manager": {"with", "async with"},
    "try": {"except", "finally", "else", "raise"},
    "for": {"else", "break", "continue", "in"},
    "while": {"else", "break", "continue"},
    "break": {"for", "while", "else", "continue"},
    "continue": {"for", "while", "break"},
    "def": {"return", "lambda", "yield"},
    "return": {"def", "yield"},
    "yield": {"return", "def"},
    "global": {"nonlocal"},
    "nonlocal": {"global"},
    "lambda": {"def"},
    "raise": {"try", "except"},
}
# how-to questions name a task, not the statement that does it
_TASKS = [
    (re.compile(r"\b(catch|handle|trap)\w*\b.*\bexceptions?\b|\bexception handl", re.I), "try"),
    (re.compile(r"\b(loop|iterate)\w*\s+(over|through)\b", re.I), "for"),
    (re.compile(r"\b(raise|throw)\w*\s+an?\s+(exception|error)\b", re.I), "raise"),
    (re.compile(r"\bimport\w*\b", re.I), "import"),
    (re.compile(r"\bdefine\w*\s+a\s+function\b", re.I), "def"),
    (re.compile(r"\banonymous functions?\b", re.I), "lambda"),
]

_PROSE = re.compile(r"^[\"“(‘]?[A-Z0-9_*\"‘].*[a-z].*[.!?:][\"”’)]*$")
_NOT_PROSE = re.compile(r"::=|[-=*~^]{4,}|^>>>|\w+ = \w+\(|[{};]\s*$")
_ITEM = re.compile(r"^(?:\d+[.)]|[*•-])\s")
_HEADING_RULE = re.compile(r"^\s*[=*~^-]{3,}\s*$")
# keywords that are also everyday English: a topic only when quoted or named as a statement/operator
_AMBIGUOUS = {
    "with",
    "for",
    "in",
    "is",
    "not",
    "and",
    "or",
    "if",
    "else",
    "as",
    "from",
    "class",
    "def",
    "none",
    "true",
    "false",
}
_KEYWORDS = {k.lower() for k in keyword.kwlist} | {"match", "case", "type"}
_NAMED = re.compile(
    r"\b(async\s+(?:with|for|def)|\w+)\s+(?:statements?|operators?|expressions?|keywords?|clauses?|loops?|blocks?|displays?)\b",
    re.I,
)
_QUOTED = re.compile(r"[\"'‘“`]([A-Za-z_][\w ]{0,30}?)[\"'’”`]")
# compounds that are one topic, and the word the reference uses for them
_COMPOUNDS = {
    "list comprehension": "list",
    "dict comprehension": "dictionary",
    "dictionary comprehension": "dictionary",
    "set comprehension": "set",
    "generator expression": "generator",
    "context manager": "context manager",
    "augmented assignment": "augmented assignment",
    "conditional expression": "conditional",
    "f-string": "formatted string",
    "format string": "format",
}
_DEFINES = (
    r"(?:is|are)\s+(?:used|a|an|the|one|defined|interpreted|evaluated|intended)\b|(?:causes|specifies|selects|"
    r"yields|creates?|terminates|continues|leaves|re-raises|binds|removes|means|consists|"
    r"tests?|checks?|evaluates|returns|wraps|provides|defines|holds)\b"
)
# a restriction or an edge case states a rule about the topic, not what it is or does
_RESTRICTS = re.compile(
    r"\b(may only|can only|must|is a syntax error|SyntaxError|cannot|not allowed|only be used)\b", re.I
)
_EDGE_CASE = ("When ", "If ", "Otherwise", "In a ", "In an ", "Note ", "However")
_NEIGHBOUR_COMPOUNDS = re.compile(
    r"\b(list|dict|dictionary|set) comprehensions?\b|\bgenerator expressions?\b|\basync (?:for|with|def)\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Scored:
    score: float
    sentence: str
    section: str
    position: int  # the sentence's place in its section, from 0


def topics(question: str) -> list[str]:
    """What ``question`` is about, in the order asked: ``"async with"``, ``"global"``, ``"list comprehension"``."""
    low = question.lower()
    found: list[str] = []
    for phrase in _COMPOUNDS:
        if re.search(rf"\b{re.escape(phrase)}s?\b", low):
            found.append(phrase)
    for match in _QUOTED.finditer(question):
        found.append(" ".join(match.group(1).lower().split()))
    for match in _NAMED.finditer(low):
        word = " ".join(match.group(1).split())
        if word in _KEYWORDS or word.startswith("async "):
            found.append(word)
    for word in re.findall(r"\b[a-z_]+\b", low):
        if word in _KEYWORDS and word not in _AMBIGUOUS:
            found.append(word)
    found += [topic for pattern, topic in _TASKS if pattern.search(question)]
    found = list(dict.fromkeys(found))
    # "async" is not a topic of its own when the question asks about "async with"
    return [t for t in found if not any(t != other and t in other.split() for other in found)]


def documented_topics(question: str) -> list[str]:
    """The topics of ``question`` that are the reference's own (a keyword, a statement, a known compound or
    task), leaving out quoted text that names nothing documented ("count the words in 'the quick fox'")."""
    tasks = {topic for _, topic in _TASKS}
    return [
        t
        for t in topics(question)
        if t in _COMPOUNDS or t in tasks or t.startswith("async ") or all(w in _KEYWORDS for w in t.split())
    ]


# words that say how to answer, not what about: "compare", "briefly", "in two sentences", "list"
FORM_TERMS = frozenset(
    tokenize(
        "compare comparison contrast difference differences differ versus vs between briefly brief short shortly "
        "summarize summarise summary sentence sentences one two three four five list name enumerate explain "
        "overview concise concisely words paragraph"
    )
)


_LENGTH_PHRASE = re.compile(r"\bin\s+(?:one|a single|a|two|three|four|five|\d+)\s+sentences?\b", re.I)


def subject_terms(question: str) -> list[str]:
    """The key terms of ``question`` that name its subject, without the words that only shape the answer."""
    plain = _LENGTH_PHRASE.sub(" ", question)
    wanted = [t for t in key_terms(plain) if t not in FORM_TERMS and len(t) > 1]
    return wanted or key_terms(question)


def topic_doc(topic: str) -> str:
    """The id of the reference document about ``topic`` (``try`` for "except", ``lists`` for list comprehensions)."""
    return _TOPIC_DOCS.get(topic, topic)


def names(sentence: str, topic: str) -> bool:
    """Whether ``sentence`` is about ``topic`` by name."""
    return _mentions(sentence, topic)


def _sections(text: str) -> list[tuple[str, str]]:
    """``text`` as (heading, body) pairs: a heading is a line underlined by ``===``/``---``/``***``."""
    lines = text.splitlines()
    out: list[tuple[str, list[str]]] = [("", [])]
    for i, line in enumerate(lines):
        if _HEADING_RULE.match(line):
            continue
        if i + 1 < len(lines) and _HEADING_RULE.match(lines[i + 1]) and line.strip():
            out.append((line.strip(), []))
        else:
            out[-1][1].append(line)
    return [(heading, "\n".join(body)) for heading, body in out]


def _mentions(sentence: str, topic: str) -> bool:
    low = sentence.lower()
    if topic in _COMPOUNDS:  # "a list display ... or a comprehension" is about list comprehensions
        return set(tokenize(topic)) <= set(tokenize(sentence))
    if f'"{topic}"' in low or f"“{topic}”" in low:
        return True
    return bool(re.search(rf"(?<![\w\"]){re.escape(topic)}s?(?![\w\"])", low)) and (
        (topic not in _AMBIGUOUS and " " not in topic) or " " in topic
    )


def _quoted_keywords(sentence: str) -> set[str]:
    return {
        m.lower()
        for m in re.findall(r"\"([a-z_]+(?: [a-z_]+)?)\"", sentence)
        if m.split()[0].lower() in _KEYWORDS
    }


def rank(text: str, question: str, asked: list[str] | None = None, *, max_chars: int = 400) -> list[Scored]:
    """The prose sentences of ``text`` that share a key term with ``question``, best answer first."""
    asked = topics(question) if asked is None else asked
    wanted = set(subject_terms(question)) or set(tokenize(question))
    topic_words = {w for t in asked for w in t.split()}
    scored: list[Scored] = []
    for heading, body in _sections(text):
        heading_low = heading.lower()
        in_topic_section = any(_mentions(heading, t) or t in heading_low for t in asked)
        other_section = bool(_quoted_keywords(heading) - topic_words - {t for t in asked})
        position = 0
        for sentence in sentences(body):
            if len(sentence) < 30 or not _PROSE.search(sentence) or _NOT_PROSE.search(sentence):
                continue
            if _ITEM.match(sentence):  # "2. define a name …": a step of a list, not a sentence on its own
                position += 1
                continue
            words = set(tokenize(sentence))
            hits = len(wanted & words)
            named = [t for t in asked if _mentions(sentence, t)]
            restricts = bool(_RESTRICTS.search(sentence)) or sentence.startswith(_EDGE_CASE)
            # "It terminates the nearest enclosing loop": early in the topic's own section, "it" is the topic
            pronoun = (
                in_topic_section and position < 4 and sentence.startswith(("It ", "This ")) and not restricts
            )
            if not hits and not named and not in_topic_section:
                position += 1
                continue
            score = hits + 0.5 * hits / (1 + len(words) / 12)
            score += 2.0 * len(named) + 1.5 * pronoun
            defines = (named or pronoun) and re.search(
                rf"^(?:The\s+|A\s+|An\s+|It\s+)?[\"“]?[\w ]*[\"”]?(?:\s+\w+){{0,3}}?\s*{_DEFINES}", sentence
            )
            # the reference opens a topic's section with what the topic is
            opening = in_topic_section and position == 0
            if (defines or opening) and not restricts:
                score += 3.0 if opening else 2.0
            if restricts:
                score -= 1.5
            if in_topic_section:
                score += 1.0 + 3.0 / (1 + position)
            elif other_section:
                score -= 1.5
            elif asked and not named:
                score -= 1.0  # about something else the document also covers
            neighbours = _quoted_keywords(sentence) - topic_words - set(asked)
            neighbours |= {m.group().lower() for m in _NEIGHBOUR_COMPOUNDS.finditer(sentence)} - set(asked)
            neighbours = {n for n in neighbours if not any(n.rstrip("s") == t for t in asked)}
            leads = re.match(r"^(?:The\s+)?[\"“]([a-z_ ]+)[\"”]", sentence)
            if neighbours and (not in_topic_section or (leads and leads.group(1) in neighbours)):
                score -= (0.5 if named else 1.5) * len(neighbours)
            first = _NEIGHBOUR_COMPOUNDS.search(sentence[:30])
            if (
                first
                and first.group().lower() not in asked
                and first.group().lower().rstrip("s") not in asked
            ):
                score -= 3.0  # "A dict comprehension, in contrast to list …" is about the neighbour
            score -= 0.5 * ("**" in sentence) + 0.3 * (
                sentence.startswith(("See ", "Note:", "Changed in", "New in"))
            )
            scored.append(Scored(score, sentence[:max_chars], heading, position))
            position += 1
    scored.sort(key=lambda s: (-s.score, s.position))
    return scored
