"""Agents from installed distributions (entry point group ``podium.agents``), end to end in subprocesses.

The distributions are real ones to ``importlib.metadata``: a ``*.dist-info`` folder with ``METADATA`` and
``entry_points.txt`` on ``PYTHONPATH``, as pip leaves it. The good agent is the project ``podium new
agent`` writes; the bad ones each break one rule, and each must be one line naming it and the fix (exit
2), never a traceback, while ``podium up`` leaves them out and runs the rest.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import podium
from podium.agents.scaffold import write_project
from tests.docs import block
from tests.support import ROOT, Proc, wait_until

pytestmark = pytest.mark.timeout(300)

READY = re.compile(r"ready: A2A (\S+)")
QUESTION = "How many words are in: the quick brown fox"
GOOD_CARD = json.loads((ROOT / "agents/scaffold/template/card.json.tmpl").read_text())


def _dist(site: Path, dist: str, entries: dict[str, str]) -> None:
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {module}\n" for name, module in entries.items())
    (info / "entry_points.txt").write_text(f"[podium.agents]\n{lines}")


def _package(site: Path, package: str, name: str, code: str, card: dict | None = None) -> None:
    folder = site / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "agent.py").write_text(code)
    text = json.dumps(card if card is not None else GOOD_CARD).replace("{{name}}", name)
    (folder / "card.json").write_text(text.replace("{{title}}", name))


BUILD_RAISES = "def build(ctx):\n    raise RuntimeError('set WIDGET_URL first')\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder on PYTHONPATH with the scaffolded word-count agent and five broken ones installed."""
    root = tmp_path_factory.mktemp("site")
    write_project("word-count", root)
    site = root / "word-count"  # the project's root holds its package: the path an editable install adds
    _dist(site, "word-count", {"word-count": "word_count.agent"})
    _package(site, "no_import", "no-import", "import not_installed_anywhere\n")
    _dist(site, "no-import", {"no-import": "no_import.agent"})
    _package(site, "bad_build", "bad-build", BUILD_RAISES)
    _dist(site, "bad-build", {"bad-build": "bad_build.agent"})
    _package(site, "bad_card", "bad-card", "def build(ctx):\n    return None\n", {**GOOD_CARD, "skills": []})
    _dist(site, "bad-card", {"bad-card": "bad_card.agent"})
    _package(site, "no_build", "no-build", "x = 1\n")
    _dist(site, "no-build", {"no-build": "no_build.agent"})
    _dist(site, "twin-a", {"twin": "word_count.agent"})
    _dist(site, "twin-b", {"twin": "word_count.agent"})
    _dist(site, "shadow", {"echo": "word_count.agent"})
    return site


def _env(site: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": f"{site}:{ROOT}", "REDIS_URL": "", "PODIUM_NAMESPACE": "", **extra}


def _podium(site: Path, *args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "REDIS_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", *args],
        env={**full, **_env(site), **env}, cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def _ask(url: str, text: str) -> str:
    async with podium.open_client(url) as client:
        return podium.task_text(await podium.ask(client, text))


def _started(proc: Proc, timeout: float = 60) -> str:
    wait_until(lambda: READY.search(proc.output()) or not proc.alive(), timeout=timeout, what="ready line")
    found = READY.search(proc.output())
    assert found, proc.output()
    return found.group(1)


def _routed_to_word_count(site: Path, *where: str, trace: list[str] | None = None) -> None:
    """`podium ask` gets word-count's answer, and `podium trace` shows the orchestrator chose it."""
    asked = _podium(site, "ask", *where, QUESTION)
    said = asked.stdout + asked.stderr
    assert asked.returncode == 0 and "4 words" in asked.stdout, said
    assert "completed by word-count" in said, said
    task = re.search(r"· task (\S+) ·", said)
    assert task, said
    traced = _podium(site, "trace", task.group(1), *(trace or where))
    assert traced.returncode == 0, traced.stdout + traced.stderr
    assert "word-count" in traced.stdout, traced.stdout


def test_an_installed_agent_runs_with_podium_agent_and_answers_over_a2a(site: Path) -> None:
    proc = Proc.podium("agent", "word-count", "--no-register", env=_env(site))
    try:
        url = _started(proc)
        assert asyncio.run(_ask(url, QUESTION)).startswith("4 words"), proc.output()
        # Without Redis it says it is on a private bus nobody else sees, and how to join a system.
        wait_until(lambda: "private in-process bus" in proc.output(), what="the warning")
        assert "set REDIS_URL" in proc.output()
    finally:
        proc.close()


def test_a_card_and_a_module_run_without_packaging(tmp_path: Path) -> None:
    # The project's folder, with no distribution on the path: only the card file and the module's name,
    # as docs/agents.md runs it.
    write_project("word-count", tmp_path)
    documented = shlex.split(block("agents.md", "## The contract", ""))
    assert documented[:2] == ["podium", "agent"] and "--card" in documented, documented
    args = [*documented[1:], "--no-register"]
    proc = Proc(
        [sys.executable, "-m", "podium.agents.cli", *args], env=_env(ROOT), cwd=tmp_path / "word-count"
    )
    try:
        url = _started(proc)
        assert "podium agent word-count ready" in proc.output()
        assert asyncio.run(_ask(url, QUESTION)).startswith("4 words")
    finally:
        proc.close()


@pytest.mark.parametrize(
    ("agent", "says"),
    [
        ("no-import", "agent no-import: cannot import 'no_import.agent' (ModuleNotFoundError"),
        ("bad-build", "agent bad-build: build(ctx) in bad_build.agent raised RuntimeError: set WIDGET_URL"),
        ("bad-card", "card.json: skills: at least one skill is required"),
        ("no-build", "module 'no_build.agent' defines no build(ctx)"),
        ("twin", "agent twin: offered by several distributions (twin-a, twin-b); pip uninstall all but one"),
    ],
)
def test_a_broken_installed_agent_is_one_line_and_exit_2(site: Path, agent: str, says: str) -> None:
    done = _podium(site, "agent", agent, "--no-register")
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and says in done.stderr, done.stderr


def test_podium_acl_has_a_user_per_installed_agent(site: Path, tmp_path: Path) -> None:
    done = _podium(site, "acl", "--env-file", str(tmp_path / "podium.env"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"^user word-count ", done.stdout, re.M), done.stdout


def test_podium_up_runs_installed_agents_routes_to_them_and_leaves_broken_ones_out(site: Path) -> None:
    up = Proc.podium("up", "--any-port", "--no-console", env=_env(site))
    try:
        wait_until(lambda: "Ctrl-C stops" in up.output() or not up.alive(), timeout=120, what="podium up")
        out = up.output()
        assert up.alive(), out
        alive = next(line for line in out.splitlines() if "alive in the registry" in line)
        assert "word-count" in alive and "researcher" in alive, out
        for broken in ("no-import", "bad-card", "no-build", "twin"):  # found before anything starts
            assert f"not starting {broken}; the rest runs" in out, out
            assert broken not in alive
        # build() runs only when the agent starts: it is left out then.
        assert "set WIDGET_URL first; fix build() (left out bad-build, which could not start" in out, out
        assert "bad-build" not in alive
        # An entry point with a built-in's name is ignored, said in one line; the built-in runs.
        assert "agent echo: distribution shadow 0.1 (entry point echo = 'word_count.agent'" in out, out
        assert "reuses the name of a built-in agent, so it is ignored" in out and ", echo" in alive, out
        url = re.search(r"orchestrator\s+(http://\S+)", out)
        assert url, out
        _routed_to_word_count(site, "--url", url.group(1))
    finally:
        assert up.terminate(60) == 0, up.output()
        assert "Traceback" not in up.output(), up.output()
        up.close()


def test_podium_up_refuses_a_broken_agent_it_was_asked_for(site: Path) -> None:
    done = _podium(site, "up", "--any-port", "--no-console", "--agents", "echo,no-import")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot import 'no_import.agent'" in done.stderr and "Traceback" not in done.stderr


def test_on_redis_an_installed_agent_is_its_own_process_and_a_failing_build_leaves_the_rest(
    site: Path, redis_url: str
) -> None:
    args = ["up", "--redis-url", redis_url, "--any-port", "--no-console", "--agents"]
    up = Proc.podium(*args, "orchestrator,word-count,bad-build", env=_env(site))
    try:
        wait_until(lambda: "Ctrl-C stops" in up.output() or not up.alive(), timeout=180, what="podium up")
        out = up.output()
        assert up.alive(), out
        assert "raised RuntimeError: set WIDGET_URL first" in out, out
        assert "left out bad-build" in out, out
        url = re.search(r"orchestrator\s+(http://\S+)", out)
        assert url, out
        _routed_to_word_count(site, "--url", url.group(1), trace=["--redis-url", redis_url])
        listed = _podium(site, "agents", "--json", "--redis-url", redis_url)
        names = {entry["name"] for entry in json.loads(listed.stdout)}
        assert "word-count" in names and "bad-build" not in names, listed.stdout + listed.stderr
    finally:
        assert up.terminate(60) == 0, up.output()
        up.close()


def test_the_scaffolded_project_has_the_files_and_its_own_test_passes(site: Path) -> None:
    for name in ("pyproject.toml", "README.md", "word_count/agent.py", "word_count/card.json",
                 "word_count/config.json", "tests/test_agent.py"):  # fmt: skip
        assert (site / name).is_file(), name
    assert (
        '[project.entry-points."podium.agents"]\nword-count = "word_count.agent"'
        in (site / "pyproject.toml").read_text()
    )
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "REDIS_URL"))}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "tests"],
        cwd=site, env={**env, **_env(site)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr
