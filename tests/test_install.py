"""Installed as a user installs it: the built wheel in a fresh virtualenv that also holds openai-agents
(whose import package is also called `agents`), then the `podium` command from an empty folder that is not
the repo. Slow (it installs every dependency into the venv: about 30 s with pip's cache), so marked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs import block
from tests.support import ROOT, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# What the venv's Python reports of the installed distribution: its top-level names and the console script.
PROBE = """
import json, importlib.metadata as md
files = md.distribution("podium").files
print(json.dumps(sorted({f.parts[0] for f in files if f.parts[0] not in ("..",)})))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user who has never configured Podium: no Redis, no key, no paths into the repo."""
    drop = (
        "PYTHONPATH",
        "REDIS_URL",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "VIRTUAL_ENV",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PODIUM_")}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The venv's bin directory, with the freshly built wheel and openai-agents installed."""
    base = tmp_path_factory.mktemp("install")
    wheels = base / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True, env=_clean_env(), cwd=base,
    )  # fmt: skip
    (wheel,) = wheels.glob("podium-*.whl")
    venv.create(base / "venv", with_pip=True)
    bin_dir = base / "venv" / "bin"
    subprocess.run(
        [bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         str(wheel), "openai-agents"],
        check=True, env=_clean_env(), cwd=base,
    )  # fmt: skip
    yield bin_dir


def _run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=_clean_env(), timeout=120,
        check=False,
    )  # fmt: skip


def test_the_wheel_installs_only_podium_at_the_top_of_site_packages(installed: Path, tmp_path: Path) -> None:
    done = _run(installed, installed / "python", "-c", PROBE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tops = set(json.loads(done.stdout))
    assert {t for t in tops if not t.endswith(".dist-info")} == {"podium"}, tops


def test_openai_agents_and_podium_import_side_by_side(installed: Path, tmp_path: Path) -> None:
    code = (
        "from agents import Agent; import podium, podium.agents; print(Agent.__module__, podium.__all__[:1])"
    )
    done = _run(installed, installed / "python", "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("agents.agent ")


def test_podium_card_check_finds_the_packaged_cards(installed: Path, tmp_path: Path) -> None:
    done = _run(installed, installed / "podium", "card", "check", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {line.split()[1].rstrip(":") for line in done.stdout.splitlines()} >= {
        "orchestrator", "researcher", "analyst", "writer", "reviewer", "echo"
    }  # fmt: skip


def test_podium_up_from_an_empty_folder_answers_podium_ask(installed: Path, tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            [installed / "podium", "up", "--any-port"], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
            env=_clean_env(), start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: "Ctrl-C stops everything" in log.read_text() or up.poll() is not None, timeout=90)
        text = log.read_text()
        assert up.poll() is None, text
        url = re.search(r"orchestrator\s+(http://\S+)", text)
        assert url, text
        asked = _run(installed, installed / "podium", "ask", "--url", url.group(1), "What is 15% of 240?",
                     cwd=tmp_path)  # fmt: skip
        assert asked.returncode == 0, asked.stdout + asked.stderr
        assert "36" in asked.stdout, asked.stdout
    finally:
        up.terminate()
        up.wait(30)
    assert "Traceback" not in log.read_text()


def test_podium_agent_runs_from_the_wheel_on_redis(installed: Path, tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    agent = subprocess.Popen(
        [installed / "podium", "agent", "echo", "--redis-url", redis_url, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=_clean_env(),
    )  # fmt: skip
    try:
        assert agent.stdout is not None
        line = agent.stdout.readline()
        assert f"podium agent echo ready: A2A http://127.0.0.1:{port}" in line, line
    finally:
        agent.terminate()
        agent.wait(30)
        if agent.stdout is not None:
            agent.stdout.close()
    assert agent.returncode == 0


def test_a_new_agent_scaffolded_installed_and_routed_to_embedded_and_on_redis(
    installed: Path, tmp_path: Path, redis_url: str
) -> None:
    """What a user types to add their own agent (docs/agents.md), each step a real command in the venv."""
    import shlex
    import time

    steps = [shlex.split(line) for line in block("agents.md", "## The scaffold", "sh").splitlines()]
    assert [s[:2] for s in steps] == [
        ["podium", "new"],
        ["pip", "install"],
        ["podium", "up"],
        ["podium", "ask"],
    ]
    question = steps[3][2]
    started = time.monotonic()
    made = _run(installed, installed / "podium", *steps[0][1:], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    pip = _run(installed, installed / "python", "-m", "pip", *steps[1][1:], "--quiet", cwd=tmp_path)
    assert pip.returncode == 0, pip.stderr

    def ask_and_trace(url: str, *trace_from: str) -> None:
        asked = _run(installed, installed / "podium", "ask", "--url", url, question, cwd=tmp_path)
        said = asked.stdout + asked.stderr
        assert asked.returncode == 0 and asked.stdout.startswith("9 words"), said  # the documented question
        assert "completed by word-count" in said, said
        task = re.search(r"· task (\S+) ·", said)
        assert task, said
        traced = _run(installed, installed / "podium", "trace", task.group(1), *trace_from, cwd=tmp_path)
        assert traced.returncode == 0 and "word-count" in traced.stdout, traced.stdout + traced.stderr

    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            [installed / "podium", "up", "--any-port", "--no-console"], stdout=out, stderr=subprocess.STDOUT,
            cwd=tmp_path, env=_clean_env(), start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: "Ctrl-C stops everything" in log.read_text() or up.poll() is not None, timeout=90)
        text = log.read_text()
        assert up.poll() is None and re.search(r"alive in the registry: .*word-count", text), text
        url = re.search(r"orchestrator\s+(http://\S+)", text)
        assert url, text
        ask_and_trace(url.group(1), "--url", url.group(1))
        print(f"podium new agent -> routed answer: {time.monotonic() - started:.1f}s")
    finally:
        up.terminate()
        up.wait(30)
    assert "Traceback" not in log.read_text()

    # On Redis: the system without it, then the agent joins with `podium agent word-count`.
    env = _clean_env(REDIS_URL=redis_url)
    with log.open("w") as out:
        up = subprocess.Popen(
            [installed / "podium", "up", "--any-port", "--no-console", "--agents", "orchestrator"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=env, start_new_session=True,
        )  # fmt: skip
    agent = subprocess.Popen(
        [installed / "podium", "agent", "word-count"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        assert agent.stdout is not None
        assert "podium agent word-count ready" in agent.stdout.readline()
        wait_until(lambda: "Ctrl-C stops everything" in log.read_text() or up.poll() is not None, timeout=120)
        url = re.search(r"orchestrator\s+(http://\S+)", log.read_text())
        assert up.poll() is None and url, log.read_text()
        ask_and_trace(url.group(1), "--redis-url", redis_url)
    finally:
        for proc in (agent, up):
            proc.terminate()
            proc.wait(30)
        if agent.stdout is not None:
            agent.stdout.close()


def test_uninstalling_podium_leaves_openai_agents_whole(installed: Path, tmp_path: Path) -> None:
    # Last in this module: it removes podium from the shared venv.
    done = _run(installed, installed / "python", "-m", "pip", "uninstall", "-y", "podium", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    after = _run(installed, installed / "python", "-c", "from agents import Agent; print('ok')", cwd=tmp_path)
    assert after.stdout.strip() == "ok", after.stderr
