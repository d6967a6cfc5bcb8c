"""A cited draft as the writer writes it and the reviewer reads it: paragraphs of sentences carrying
markers like ``[1]``, then a sources list mapping each marker to a document id and quote::

    The "with" statement wraps a block with a context manager's methods [1].

    Sources:
    [1] with — “The "with" statement is used to wrap the execution of a block ...”
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from podium.agents.text.words import key_terms, markers, sentences, strip_markers

SOURCES_HEADING = re.compile(r"^\s*(?:#+\s*)?(sources|references|citations)\s*:?\s*$", re.I | re.M)
_SOURCE_LINE = re.compile(r"^\s*\[(\d+)\]\s*(\S+)(?:\s*[—–:-]+\s*[“\"](.*)[”\"])?\s*$")
_HEADING = re.compile(r"^\s*(#+\s|\*\*[^*]+\*\*\s*$)|:\s*$")


@dataclass(slots=True)
class SourceRef:
    marker: int
    doc_id: str
    quote: str = ""


@dataclass(slots=True)
class Draft:
    paragraphs: list[list[str]]
    sources: list[SourceRef] = field(default_factory=list)

    @property
    def sentences(self) -> list[str]:
        return [s for p in self.paragraphs for s in p]

    @property
    def body(self) -> str:
        return "\n\n".join(" ".join(p) for p in self.paragraphs if p)

    def marker_for(self, doc_id: str, quote: str = "") -> int:
        """The marker citing ``quote`` from ``doc_id``, adding a source when the draft has none. Two different
        quotes from one document are two sources; a citation without a quote reuses the document's first."""
        for source in self.sources:
            if source.doc_id == doc_id and (not quote or source.quote == quote):
                return source.marker
        for source in self.sources:
            if source.doc_id == doc_id and not source.quote:  # the document was cited without a quote: add it
                source.quote = quote
                return source.marker
        marker = max((s.marker for s in self.sources), default=0) + 1
        self.sources.append(SourceRef(marker, doc_id, quote))
        return marker

    def source(self, marker: str) -> SourceRef | None:
        for source in self.sources:
            if str(source.marker) == marker or source.doc_id == marker:
                return source
        return None

    def replace(self, old: str, new: str | None) -> bool:
        """Replace (or with ``None`` remove) the sentence ``old``; false if it is not in the draft."""
        for paragraph in self.paragraphs:
            if old in paragraph:
                i = paragraph.index(old)
                if new is None:
                    del paragraph[i]
                else:
                    paragraph[i] = new
                return True
        return False

    def render(self) -> str:
        used = {m for s in self.sentences for m in markers(s)}
        listed = [s for s in sorted(self.sources, key=lambda s: s.marker) if str(s.marker) in used]
        if not listed:
            return self.body
        lines = [f"[{s.marker}] {s.doc_id}" + (f" — “{s.quote}”" if s.quote else "") for s in listed]
        return self.body + "\n\nSources:\n" + "\n".join(lines)


def parse(text: str) -> Draft:
    """The draft's paragraphs and its sources list (if it has one)."""
    heading = SOURCES_HEADING.search(text)
    body, tail = (text[: heading.start()], text[heading.end() :]) if heading else (text, "")
    sources = []
    for line in tail.splitlines():
        match = _SOURCE_LINE.match(line)
        if match:
            sources.append(SourceRef(int(match.group(1)), match.group(2), match.group(3) or ""))
    paragraphs = [sentences(p) for p in re.split(r"\n\s*\n", body) if p.strip()]
    return Draft([p for p in paragraphs if p], sources)


def is_claim(sentence: str) -> bool:
    """A sentence stating something that needs a source: not a question, heading or bare phrase."""
    plain = strip_markers(sentence).strip()
    if plain.endswith("?") or _HEADING.search(plain) or len(plain.split()) < 4:
        return False
    return len(key_terms(plain)) >= 2


def cite(sentence: str, numbers: list[int]) -> str:
    """``sentence`` with markers for ``numbers`` added before its final punctuation."""
    have = set(markers(sentence))
    new = [n for n in numbers if str(n) not in have]
    if not new:
        return sentence
    tag = "".join(f"[{n}]" for n in new)
    match = re.search(r"([.!?][\"”’)]*)$", sentence)
    if match:
        return f"{sentence[: match.start()].rstrip()} {tag}{match.group(1)}"
    return f"{sentence} {tag}."
