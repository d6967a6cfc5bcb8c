"""A third-party MCP server (the reference Git server, ``mcp-server-git`` from PyPI) mounted the way
docs/mcp.md shows: the documented config and executor, run as an agent that calls its tools over stdio."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import podium
from podium.agents.host.config import parse_config
from podium.agents.host.mounting import MountedTools
from podium.agents.scaffold import write_project
from tests.docs import blocks
from tests.support import ROOT, Proc, wait_until

pytestmark = pytest.mark.timeout(180)
SECTION = "## Mounting a third-party server"
GIT_CONFIG, OTHER_CONFIGS = blocks("mcp.md", SECTION, "json")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A Git repository with one commit and one untracked file."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "README").write_text("hello\n")
    subprocess.run([*git, "add", "README"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the first commit"], cwd=repo, check=True)
    (repo / "notes.txt").write_text("not added yet\n")
    return repo


def test_the_documented_agent_calls_the_git_server_over_stdio(repo: Path, tmp_path: Path) -> None:
    write_project("git-status", tmp_path)
    project = tmp_path / "git-status"
    (project / "git_status" / "agent.py").write_text(blocks("mcp.md", SECTION)[0])
    (project / "git_status" / "config.json").write_text(GIT_CONFIG)
    card = project / "git_status" / "card.json"
    args = ["agent", "--card", str(card), "--executor", "git_status.agent", "--no-register"]
    # Started in the repository, as a user would (`--repository .`), the project's package on the path.
    agent = Proc(
        [sys.executable, "-m", "podium.agents.cli", *args],
        # PATH without the virtualenv: "python" in the config must still be the agent's own interpreter.
        env={"PYTHONPATH": f"{project}:{ROOT}", "REDIS_URL": "", "PATH": "/usr/bin:/bin"},
        cwd=repo,
    )
    try:
        wait_until(lambda: "ready: A2A" in agent.output() or not agent.alive(), timeout=90, what="ready")
        found = re.search(r"ready: A2A (\S+)", agent.output())
        assert found, agent.output()

        async def ask() -> str:
            async with podium.open_client(found.group(1)) as client:
                return podium.task_text(await podium.ask(client, "What is the state of the repository?"))

        answer = asyncio.run(ask())
        assert "notes.txt" in answer and "the first commit" in answer, answer
    finally:
        agent.close()


def test_only_the_allowed_tools_are_mounted_and_called(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)

    async def main() -> None:
        async with MountedTools(parse_config(json.loads(GIT_CONFIG)).mcp, agent="t") as tools:
            assert {s.name for s in tools.specs()} == {"git__git_status", "git__git_log"}
            refused = await tools.call("git__git_add", {"repo_path": ".", "files": ["notes.txt"]})
            assert refused.is_error and "not available" in refused.text
            status = await tools.call("git__git_status", {"repo_path": "."})
            assert not status.is_error and "notes.txt" in status.text, status.text

    anyio.run(main)
    staged = subprocess.run(
        ["git", "diff", "--cached", "--name-only"], cwd=repo, capture_output=True, text=True
    )
    assert staged.stdout == ""  # git_add was never called


def test_the_http_and_npx_examples_are_valid_configs() -> None:
    servers = parse_config(json.loads(OTHER_CONFIGS)).mcp
    assert [(s.name, s.transport) for s in servers] == [("search", "http"), ("files", "stdio")]
    assert all(s.allow for s in servers)
