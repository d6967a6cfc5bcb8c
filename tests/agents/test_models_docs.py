"""docs/models.md as a user follows it: the environment of each provider's section and the agent
configs it shows give the engines it says, and its example of a bad field is the error Podium gives."""

from __future__ import annotations

import json
import re

import pytest

from podium.agents.host.config import AgentConfigError, parse_config
from podium.agents.llm import engine_from_env
from podium.agents.llm.openai_engine import OpenAIEngine
from podium.agents.llm.settings import RoleEngines
from tests.docs import blocks, section


def exports(heading: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of the first sh block under ``heading``."""
    [code] = blocks("models.md", heading, "sh")[:1]
    return {m[0]: m[1] for m in re.findall(r"^export (\w+)=(\S+)", code, re.M)}


def test_the_ollama_section_points_every_agent_at_the_local_server() -> None:
    env = exports("### Ollama, locally")
    engine = engine_from_env(env)
    assert isinstance(engine, OpenAIEngine)
    assert (engine.base_url, engine.model) == ("http://localhost:11434/v1", "qwen2.5:7b")
    assert engine._secret is None  # no key needed


def test_the_claude_and_openai_compatible_sections_choose_their_engines() -> None:
    claude = exports("### Claude")
    assert engine_from_env(claude).name == "anthropic"  # type: ignore[union-attr]
    other = engine_from_env(exports("### An OpenAI-compatible server"))
    assert isinstance(other, OpenAIEngine) and other.base_url == "https://openrouter.ai/api/v1"


def test_the_per_agent_configs_shown_give_the_models_they_name() -> None:
    one, orchestrator = (json.loads(b) for b in blocks("models.md", "## A model per agent", "json"))
    env = {"ANTHROPIC_API_KEY": "sk-ant-x", "OPENAI_BASE_URL": "http://localhost:11434/v1"}
    mine = engine_from_env(env, llm=parse_config(one).llm)
    assert isinstance(mine, OpenAIEngine) and (mine.model, mine.max_tokens) == ("qwen2.5:7b", 2048)
    llm = parse_config(orchestrator).llm
    roles = RoleEngines(engine_from_env(env, llm=llm), llm, env, "orchestrator.json")
    planner, synthesis = roles.for_role("planner"), roles.for_role("synthesis")
    assert (planner.name, planner.model, planner.thinking_budget) == ("anthropic", "claude-haiku-4-5", 1024)
    assert (synthesis.model, synthesis.thinking_budget) == ("claude-opus-5-5", 0)


def test_the_bad_field_example_is_the_error_podium_gives() -> None:
    shown = re.search(
        r"\(`(agents/config/orchestrator\.json: [^`]+)`\)", section("models.md", "## A model per agent")
    )
    assert shown is not None
    with pytest.raises(AgentConfigError) as caught:
        parse_config({"llm": {"planner": {"thinking": -1}}}, "agents/config/orchestrator.json")
    assert str(caught.value) == shown.group(1)
