"""Named workflows end to end, as a user runs them: ``podium up`` (embedded, workflows from the folder)
and, on Redis, real agent processes; each of the guide's example workflows added with ``podium
workflow add``, offered on the orchestrator's card, and run by name with ``podium ask --workflow``; a
question that names one is routed to it by the planner."""

from __future__ import annotations

import json
import re
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from tests.agents.orchestrator.cluster import Cluster, answer_of, status_text
from tests.agents.test_up import _start
from tests.docs import blocks
from tests.support import Proc, RedisServer, wait_until

pytestmark = pytest.mark.anyio

EXAMPLES = Path("docs/examples/workflows")


def _run(*args: str, env: dict[str, str], wait: float = 180) -> tuple[int, str]:
    proc = Proc.podium(*args, env=env)
    try:
        return proc.proc.wait(wait), proc.output()
    finally:
        proc.close()


def _skills(url: str) -> list[str]:
    card = httpx.get(f"{url}/.well-known/agent-card.json", timeout=10).json()
    return [s["id"] for s in card["skills"]]


def test_workflows_in_embedded_podium_up(tmp_path: Path) -> None:
    env = {"REDIS_URL": "", "ANTHROPIC_API_KEY": "", "PODIUM_WORKFLOWS_DIR": str(tmp_path / "flows")}
    up, urls = _start("--no-console", env=env)
    try:
        env["PODIUM_REGISTRY_URL"] = urls["registry"]
        orch = urls["orchestrator"]
        # the guide's commands, as written but for the URL
        for command in blocks("workflows.md", "## Adding, listing, removing", "bash")[0].splitlines():
            if command.startswith("podium workflow "):
                code, out = _run(*command.split()[1:], env=env)
                assert code == 0, out
        assert "checked-sum" in out and "doc-brief" in out and "reviewed-answer" in out, out
        wait_until(lambda: "workflow.reviewed-answer" in _skills(orch), timeout=30, what="workflow skills")
        assert {"workflow.checked-sum", "workflow.doc-brief"} <= set(_skills(orch))
        # a file that is not a workflow is skipped with one line in the log; the others stay offered
        (tmp_path / "flows" / "broken.yaml").write_text("name: [unclosed\n")
        wait_until(lambda: "workflow skipped:" in up.output(), timeout=30, what="the broken file reported")
        assert "broken.yaml: not valid YAML" in up.output() and "Traceback" not in up.output()

        code, out = _run("ask", "--url", orch, "--workflow", "checked-sum", "--input", "expression=15% of 240",
                         env=env)  # fmt: skip
        assert code == 0 and re.search(r"15% of 240 (=|is) 36\b", out), out
        assert "Plan (workflow checked-sum)" in out and "vote" in out, out

        code, out = _run("ask", "--url", orch, "--workflow", "doc-brief", "--input", "topic=the with statement",
                         env=env)  # fmt: skip
        assert code == 0 and "context manager" in out.lower() and re.search(r"\[\d+\]", out), out
        assert "✓ research completed by researcher" in out and "✓ brief completed by writer" in out, out

        code, out = _run("ask", "--url", orch, "--json", "--workflow", "reviewed-answer",
                         "--input", "question=How does the with statement work?", env=env)  # fmt: skip
        assert code == 0, out
        task = json.loads(out[out.index("{") :])
        code, trace = _run("trace", task["id"], "--url", orch, env=env)
        assert code == 0 and "writer" in trace and "reviewer" in trace and "accepted" in trace, trace

        # a question that names the workflow goes to it; the planner's own plans are unchanged otherwise
        code, out = _run("ask", "--url", orch, "Write a doc brief on the yield expression", env=env)
        assert code == 0 and "Plan (workflow doc-brief)" in out and "yield" in out.lower(), out

        code, out = _run("ask", "--url", orch, "--workflow", "nope", env=env)
        assert code == 1 and "no workflow named 'nope'" in out and "Traceback" not in out, out
        code, out = _run("ask", "--url", orch, "--workflow", "checked-sum", env=env)
        assert code == 1 and "needs input(s) expression" in out, out

        code, out = _run("workflow", "remove", "checked-sum", env=env)
        assert code == 0, out
        wait_until(lambda: "workflow.checked-sum" not in _skills(orch), timeout=30, what="skill removed")
        up.signal(signal.SIGTERM)
        assert up.proc.wait(30) == 0
    finally:
        up.close()


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("flows")
    c = Cluster(redis_server.url, f"t{uuid.uuid4().hex[:12]}", Path(home))
    c.env["PODIUM_WORKFLOWS_DIR"] = str(Path(home) / "none")
    try:
        c.start("analyst", "orchestrator")
        yield c
    finally:
        c.close()


async def test_a_workflow_kept_in_redis_runs_by_name_with_its_inputs(cluster: Cluster) -> None:
    env = {**cluster.env, "REDIS_URL": cluster.redis_url, "PODIUM_NAMESPACE": cluster.namespace}
    code, out = _run("workflow", "add", str(EXAMPLES / "checked-sum.yaml"), env=env)
    assert code == 0 and "added to Redis" in out, out
    wait_until(lambda: "workflow.checked-sum" in _skills(cluster.orchestrator_url), timeout=30, what="skill")
    task, _ = await cluster.ask(
        "check this sum", data={"workflow": "checked-sum", "inputs": {"expression": "2 + 3"}}
    )
    text, _ = answer_of(task)
    assert re.search(r"(=|is) 5\b", text), status_text(task)
    entries = await cluster.trace(task.id)
    plan = next(e for e in entries if e.event == "plan")
    assert (
        plan.agent == "workflow checked-sum"
        and plan.data["plan"]["steps"][0]["call"]["text"] == "What is 2 + 3?"
    )
    assert [e.state for e in entries if e.event == "vote"] == ["decided"]
    # the registry's copy of the orchestrator's card lists the workflow too (podium agents, the console)
    code, out = _run("agents", "--json", env=env)
    orchestrator = next(a for a in json.loads(out) if a["name"] == "orchestrator")
    assert "workflow.checked-sum" in orchestrator["skills"], orchestrator["skills"]
