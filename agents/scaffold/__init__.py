"""``podium new agent NAME``: write a ready agent project from the templates beside this module.

The project is a distribution named NAME with one package (NAME with ``-``/``.`` as ``_``) holding the
executor module, its ``card.json`` and ``config.json``, an entry point in the group ``podium.agents``, a
README and a test that starts the agent and calls it over A2A.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

# template file -> where it goes in the project ({package} is the package's folder)
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "agent.py.tmpl": "{package}/agent.py",
    "card.json.tmpl": "{package}/card.json",
    "config.json.tmpl": "{package}/config.json",
    "test_agent.py.tmpl": "tests/test_agent.py",
}
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}[a-z0-9]$")


class ScaffoldError(ValueError):
    """The project cannot be written: a bad name, or the folder exists. The message says what to do."""


def package_name(name: str) -> str:
    return name.replace("-", "_")


def check_name(name: str) -> str:
    """Raises ``ScaffoldError`` unless ``name`` works as an agent, distribution and package name."""
    if not _NAME.match(name) or "--" in name:
        raise ScaffoldError(
            f"agent name {name!r}: use 2-64 lowercase letters, digits and single '-', starting with a "
            f"letter (e.g. word-count)"
        )
    from podium.agents.host.sources import BUILT_IN

    if name in BUILT_IN:
        raise ScaffoldError(f"agent name {name!r} is a built-in agent's; choose another")
    return name


def write_project(name: str, directory: Path) -> list[Path]:
    """Write the project for agent ``name`` into ``directory/name``; returns the files written.

    Raises ``ScaffoldError`` for a bad name or a project folder that already exists (nothing is
    overwritten)."""
    check_name(name)
    root = directory / name
    if root.exists():
        raise ScaffoldError(f"{root} already exists; remove it or choose another --dir")
    values = {
        "name": name,
        "package": package_name(name),
        "title": name.replace("-", " ").capitalize(),
    }
    template = resources.files("podium.agents.scaffold") / "template"
    written = []
    for source, target in FILES.items():
        text = (template / source).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path = root / target.format(package=values["package"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    (root / values["package"] / "__init__.py").write_text(
        f'"""The {name} agent for Podium (see agent.py)."""\n', encoding="utf-8"
    )
    return written
