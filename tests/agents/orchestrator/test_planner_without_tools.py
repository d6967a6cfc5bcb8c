"""A planner model that cannot take tools (an Ollama model without tool support) still plans: told so by
the server, the planner asks for the plan as JSON text, and falls back to the offline planner only when
that fails too. Against the fake OpenAI-compatible server on a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from podium.agents.llm import RetryPolicy
from podium.agents.llm.openai_engine import OpenAIEngine
from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.planning.model import ModelPlanner
from podium.agents.orchestrator.planning.offline import OfflinePlanner
from podium.agents.orchestrator.state.trace import Trace, read_trace
from podium.bus.keys import Keys
from tests.agents.openai_fake import Error, FakeOpenAI, Turn, serve
from tests.agents.orchestrator.test_model import GOOD, catalog

pytestmark = pytest.mark.anyio

NO_TOOLS = Error(400, "registry.ollama.ai/library/gemma2:2b does not support tools")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with serve(FakeOpenAI()) as server:
        yield server


async def plan(fake: FakeOpenAI, redis: Any, keys: Keys, task: str) -> Any:
    engine = OpenAIEngine(base_url=fake.url, model="gemma2:2b", retry=RetryPolicy(max_attempts=1))
    async with engine:
        return await ModelPlanner(engine, OfflinePlanner()).plan(
            "How do generators work?",
            {},
            await catalog(redis, keys),
            spending=Spending(),
            trace=Trace(redis, keys, task),
        )


async def test_a_model_without_tools_is_asked_for_the_plan_as_json_text(
    fake: FakeOpenAI, redis: Any, keys: Keys
) -> None:
    fake.script(NO_TOOLS, Turn(text=f"Here is the plan:\n```json\n{json.dumps(GOOD)}\n```"))
    got = await plan(fake, redis, keys, "nt-1")
    assert [s.id for s in got.steps] == ["research", "answer"] and got.planner == "gemma2:2b"
    first, second = fake.bodies
    assert first["tools"] and "tools" not in second
    assert '"steps"' in second["messages"][-1]["content"]  # the plan's schema went with the request
    entries = await read_trace(redis, keys, "nt-1")
    assert any(e.state == "without-tools" and "does not support tool calls" in e.reason for e in entries)


async def test_no_json_plan_either_falls_back_to_the_offline_planner(
    fake: FakeOpenAI, redis: Any, keys: Keys
) -> None:
    fake.script(NO_TOOLS, Turn(text="I cannot plan."), Turn(text="Still no plan."))
    got = await plan(fake, redis, keys, "nt-2")
    assert got.planner == "offline" and "invalid twice" in got.reason and len(fake.bodies) == 3
