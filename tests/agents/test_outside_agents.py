"""Outside A2A agents as a user adds them: an agent built on the bare a2a-sdk (tests/agents/wordsmith.py,
its own bearer token) added to the embedded ``podium up --allow-private-urls`` with ``podium agents add``,
listed as outside and health-checked, used by the orchestrator in a ``podium ask`` with its own token and
never Podium's, removed again; and the refusals: a URL that serves no card, a loopback URL on a registry
that does not allow private URLs, removing one of Podium's own agents."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from podium.agents.up.config import UpConfig
from podium.agents.up.processes import children
from tests.agents.test_up import _start
from tests.docs import blocks
from tests.support import ROOT, Proc, free_port, wait_until

PODIUM_TOKEN = "podium-secret-token"
AGENT_TOKEN = "wordsmith-own-token"


def _run(*args: str, env: dict[str, str], wait: float = 180) -> tuple[int, str]:
    proc = Proc.podium(*args, env=env)
    try:
        return proc.proc.wait(wait), proc.output()
    finally:
        proc.close()


def test_a_bare_a2a_sdk_agent_joins_by_url_and_answers_through_the_orchestrator(tmp_path: Path) -> None:
    port, seen = free_port(), tmp_path / "seen.txt"
    agent = Proc(["python", "-m", "tests.agents.wordsmith", "--port", str(port), "--seen", str(seen)],
                 env={"WORDSMITH_TOKEN": AGENT_TOKEN})  # fmt: skip
    env = {
        "REDIS_URL": "",
        "ANTHROPIC_API_KEY": "",
        "PODIUM_A2A_TOKEN": PODIUM_TOKEN,
        "WORDSMITH_TOKEN": AGENT_TOKEN,
        "PODIUM_OUTSIDE_CHECK_S": "1",
    }
    up = None
    try:
        wait_until(lambda: "ready" in agent.output(), timeout=30, what="the wordsmith agent")
        up, urls = _start("--no-console", "--allow-private-urls", env=env)
        cli = {**env, "PODIUM_REGISTRY_URL": urls["registry"]}
        code, out = _run(
            "agents", "add", f"http://127.0.0.1:{port}", "--token-env", "WORDSMITH_TOKEN", env=cli
        )
        assert code == 0 and "added outside agent wordsmith" in out and "word-stats" in out, out

        code, out = _run("agents", env=cli)  # no Redis: the registry's HTTP service lists them
        row = next(line for line in out.splitlines() if line.startswith("wordsmith "))
        assert code == 0 and "outside (ok)" in row and "word-stats" in row, out
        code, out = _run("agents", "--json", env=cli)
        listed = next(a for a in json.loads(out) if a["name"] == "wordsmith")
        assert listed["static"] and listed["tokenEnv"] == "WORDSMITH_TOKEN" and AGENT_TOKEN not in out

        steps = blocks("outside-agents.md", "## Adding one, step by step", "bash")[0]
        assert "podium agents add http://127.0.0.1:9301 --token-env WORDSMITH_TOKEN" in steps
        assert "podium up --allow-private-urls" in steps and "podium agents remove wordsmith" in steps
        question = re.search(r'^podium ask "(.+)"$', steps, re.M).group(1)  # the guide's question
        code, out = _run("ask", "--url", urls["orchestrator"], "--json", question, env=cli)
        assert code == 0, out
        task = json.loads(out[out.index("{") :])
        answer = task["artifacts"][0]["parts"][0]["text"]
        assert "5 words" in answer and "jumps fox brown quick the" in answer, answer
        code, trace = _run("trace", task["id"], "--url", urls["orchestrator"], env=cli)
        assert code == 0 and re.search(r"wordsmith.*JSONRPC|JSONRPC.*wordsmith", trace), trace
        # the agent got its own token on every call, never Podium's
        headers = seen.read_text().splitlines()
        assert headers and set(headers) == {f"Bearer {AGENT_TOKEN}"}, headers

        # an outside URL that serves no card: one line, the registry's reason, exit 2
        code, out = _run("agents", "add", f"http://127.0.0.1:{port}/nothing/here", env=cli)
        assert code == 2 and "podium agents: the registry refused" in out and "404" in out, out
        assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out
        code, out = _run("agents", "add", f"http://127.0.0.1:{free_port()}", env=cli)
        assert code == 2 and "the registry refused" in out and "Traceback" not in out, out
        code, out = _run("agents", "remove", "analyst", env=cli)
        assert code == 2 and "one of Podium's own agents" in out, out

        # health: the agent stops, the registry's next card fetch marks it down
        agent.signal(signal.SIGTERM)
        agent.proc.wait(30)

        def down() -> bool:
            return "outside (down" in _run("agents", env=cli)[1]

        wait_until(down, timeout=60, what="the outside agent shown down")
        code, out = _run("agents", "remove", "wordsmith", env=cli)
        assert code == 0 and "removed agent wordsmith" in out, out
        code, out = _run("agents", "remove", "wordsmith", env=cli)
        assert code == 2 and "no agent named 'wordsmith'" in out, out
        up.signal(signal.SIGTERM)
        assert up.proc.wait(30) == 0
    finally:
        agent.close()
        if up is not None:
            up.close()


def test_a_registry_without_allow_private_urls_refuses_a_loopback_agent_and_says_how() -> None:
    port, registry_port = free_port(), free_port()
    agent = Proc(["python", "-m", "tests.agents.wordsmith", "--port", str(port)])
    registry = Proc.podium("registry", "--port", str(registry_port), env={"REDIS_URL": ""})
    try:
        wait_until(lambda: "ready" in agent.output(), timeout=30, what="the wordsmith agent")
        wait_until(lambda: "podium registry: http" in registry.output(), timeout=30, what="the registry")
        code, out = _run("agents", "add", f"http://127.0.0.1:{port}", "--registry",
                         f"http://127.0.0.1:{registry_port}", env={})  # fmt: skip
        assert code == 2 and "loopback" in out and "podium up --allow-private-urls" in out, out
        code, out = _run("agents", "add", "ftp://example.com", env={})
        assert code == 2 and "needs the http(s) URL" in out, out
        code, out = _run("agents", "add", "http://x.example", "--token-env", "not a name", env={})
        assert code == 2 and "--token-env 'not a name'" in out, out
        code, out = _run("agents", "add", "http://127.0.0.1:9/", "--registry", f"http://127.0.0.1:{free_port()}",
                         env={})  # fmt: skip
        assert code == 1 and "cannot reach the registry" in out, out
    finally:
        agent.close()
        registry.close()


@pytest.mark.parametrize("allow", [True, False])
def test_podium_up_on_redis_passes_allow_private_urls_to_its_registry(allow: bool) -> None:
    registry = children(UpConfig(agents=["echo"], redis_url="redis://x", allow_private_urls=allow))[0]
    assert registry.name == "registry" and ("--allow-private-urls" in registry.args) is allow


@pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None, reason="needs node and npm")
def test_an_agent_on_the_javascript_sdk_joins_by_url(tmp_path: Path) -> None:
    """docs/examples/js-agent: npm install, node agent.mjs, podium agents add, podium ask."""
    project = tmp_path / "js-agent"
    shutil.copytree(ROOT / "docs" / "examples" / "js-agent", project)
    install = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=project, capture_output=True,
                             text=True, timeout=300, check=False)  # fmt: skip
    if install.returncode != 0:
        pytest.skip(f"npm install failed (no registry?): {install.stderr[-300:]}")
    port = free_port()
    agent = Proc(["node", "agent.mjs"], env={"PORT": str(port)}, cwd=project)
    up = None
    try:
        wait_until(lambda: "letter-counter ready" in agent.output(), timeout=30, what="the JavaScript agent")
        up, urls = _start(
            "--no-console", "--allow-private-urls", env={"REDIS_URL": "", "ANTHROPIC_API_KEY": ""}
        )
        cli = {"REDIS_URL": "", "PODIUM_REGISTRY_URL": urls["registry"]}
        code, out = _run("agents", "add", f"http://127.0.0.1:{port}", env=cli)
        assert code == 0 and "added outside agent letter-counter" in out, out
        steps = blocks("outside-agents.md", "## An agent on the JavaScript SDK", "bash")[0]
        assert "npm install" in steps and "PORT=9302 node agent.mjs &" in steps
        question = re.search(r'^podium ask "(.+)"$', steps, re.M).group(1)
        code, out = _run("ask", "--url", urls["orchestrator"], question, env=cli)
        assert code == 0 and "10 letters" in out and "letter-counter" in out, out
    finally:
        agent.close()
        if up is not None:
            up.close()
