"""docs/agents.md: its Python snippet (calling a tool and the model) runs as written; its commands are
run by tests/agents/test_installed_agents.py (podium agent --card) and tests/test_install.py (the
scaffold's steps in a fresh virtualenv)."""

from __future__ import annotations

import anyio
from a2a.types import AgentCard

from podium import AgentContext, Keys, NoTools, ScriptedEngine
from tests.docs import block, page


def _snippet() -> dict:
    namespace: dict = {}
    exec(compile(block("agents.md", "## Calling tools and the model"), "docs/agents.md", "exec"), namespace)
    return namespace


def _ctx(engine: object = None) -> AgentContext:
    return AgentContext(name="t", card=AgentCard(name="t"), redis=None, keys=Keys("t"), engine=engine)


def test_a_tool_error_is_a_result_the_snippet_reports() -> None:
    ctx = _ctx()
    ctx.tools = NoTools()
    said = anyio.run(_snippet()["repo_status"], ctx)
    assert said.startswith("git failed: ") and "mounts no tools" in said


def test_the_model_is_called_when_there_is_one_and_skipped_offline() -> None:
    summarise = _snippet()["summarise"]
    engine = ScriptedEngine(["One sentence."])
    assert anyio.run(summarise, _ctx(engine), "a long text") == "One sentence."
    assert engine.requests[0].messages[0].text == "a long text"
    assert anyio.run(summarise, _ctx(), "x" * 300) == "x" * 200


def test_the_page_is_in_the_index_and_the_readme() -> None:
    assert "(agents.md)" in page("index.md")
    assert "(docs/agents.md)" in page("README.md")
