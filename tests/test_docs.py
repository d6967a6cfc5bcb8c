"""The README and the guide hold together: every relative link and anchor resolves, every page of docs/ is
reachable from the index, and the README stays a five-minute read. The snippets themselves run in the
tests of what they show (tests/test_readme_bus_client.py, tests/agents/test_up.py, ...)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs import DOCS, page, pages
from tests.support import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    found, fence = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and re.match(r"#{1,6} ", line):
            found.add(_slug(line.lstrip("#")))
    return found


def _prose(path: Path) -> str:
    """The page without its code blocks (a link inside code is not a link)."""
    return re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for path in pages():
        for target in LINK.findall(_prose(path)):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_every_page_of_the_guide_is_linked_from_the_index() -> None:
    index = page("index.md")
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "index.md" and f"({p.name}" not in index]
    assert missing == []
    assert "(docs/index.md)" in page("README.md")


def test_the_readme_is_a_five_minute_read() -> None:
    words = len(_prose(ROOT / "README.md").split())
    assert words < 1200, f"README has {words} words of prose; move detail into docs/"
