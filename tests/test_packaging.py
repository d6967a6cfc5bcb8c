"""The distribution's shape, from the source tree: one `podium` namespace over the fixed folders, every
subpackage listed, and no module importing a folder by its top-level name (which works only from the
repo's root, and would pick up another library's `agents`)."""

from __future__ import annotations

import ast
import tomllib

from tests.support import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MAPPED = PYPROJECT["tool"]["setuptools"]["package-dir"]
FOLDERS = [folder for name, folder in MAPPED.items() if name != "podium"]


def test_every_subpackage_of_the_mapped_folders_is_in_the_wheel() -> None:
    found = {"podium"}
    for name, folder in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *relative)))
    assert sorted(PYPROJECT["tool"]["setuptools"]["packages"]) == sorted(found)


def test_nothing_imports_a_folder_by_its_top_level_name() -> None:
    top = {folder for folder in FOLDERS}
    offenders = []
    for folder in [*FOLDERS, "podium", "tests"]:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [
                    f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in top
                ]
    assert offenders == []


def test_the_console_script_and_python_dash_m_name_the_same_entry() -> None:
    assert PYPROJECT["project"]["scripts"] == {"podium": "podium.agents.cli:main"}
    assert "from podium.agents.cli import main" in (ROOT / "podium" / "__main__.py").read_text()
