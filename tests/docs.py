"""Reading the README and the guide in docs/ the way the snippet tests need: a page, a section of it, and
the code blocks under a heading."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

DOCS = ROOT / "docs"


def page(name: str) -> str:
    """``README.md`` or a page of docs/ (``calling.md``), as text."""
    return (ROOT / name if name == "README.md" else DOCS / name).read_text()


def section(name: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line, e.g. ``## curl``) up to the next heading of the
    same or a higher level, outside code blocks."""
    lines = page(name).splitlines(keepends=True)
    level = len(heading) - len(heading.lstrip("#"))
    start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == heading)
    fence, end = False, len(lines)
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("```"):
            fence = not fence
        match = re.match(r"(#{1,6}) ", lines[i])
        if not fence and match and len(match.group(1)) <= level:
            end = i
            break
    return "".join(lines[start:end])


def blocks(name: str, heading: str | None = None, language: str = "python") -> list[str]:
    """The ```language code blocks of a page, or of one section of it."""
    text = section(name, heading) if heading else page(name)
    return re.findall(rf"^```{re.escape(language)}\n(.*?)^```", text, re.S | re.M)


def block(name: str, heading: str, language: str = "python") -> str:
    """The first ```language block under ``heading``. Raises ``AssertionError`` when there is none."""
    found = blocks(name, heading, language)
    assert found, f"no ```{language} block under {heading!r} in {name}"
    return found[0]


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
