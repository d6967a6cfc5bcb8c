"""Thinking budgets for Claude, against the Messages API's real shapes (httpx2.MockTransport): the
orchestrator's planner thinks a modest budget by default, an agent's config sets its own, the budget
comes on top of the answer's tokens, and a request's token budget bounds both."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from podium.agents.llm import RetryPolicy, run_tool_loop
from podium.agents.llm.settings import PLANNER_THINKING, LlmConfig, RoleEngines
from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.planning.model import MAX_TOKENS, PLAN_TOOL, ModelPlanner
from podium.agents.orchestrator.planning.offline import OfflinePlanner
from podium.agents.orchestrator.state.trace import Trace
from tests.agents.orchestrator.test_model import GOOD, catalog
from tests.agents.test_llm_support import API_KEY, MODEL, MessagesAPI, message, text, tool_use

pytestmark = pytest.mark.anyio

ENV = {"ANTHROPIC_API_KEY": API_KEY, "PODIUM_MODEL": MODEL}
THOUGHT = {
    "type": "thinking",
    "thinking": "Research first, then write.",
    "signature": "EqQBCgIYAhIM1gbcDa9GJwZA",
}


def engines(api: MessagesAPI, http: httpx2.AsyncClient, llm: dict[str, Any] | None) -> RoleEngines:
    from podium.agents.llm import engine_from_env

    config = LlmConfig.model_validate(llm) if llm is not None else None
    options = {"http_client": http, "retry": RetryPolicy(max_attempts=1)}
    default = engine_from_env(ENV, llm=config, **options)
    return RoleEngines(default, config, ENV, "orchestrator.json", **options)


async def plan_with(redis: Any, keys: Any, llm: dict[str, Any] | None) -> dict[str, Any]:
    api = MessagesAPI(message(THOUGHT, tool_use("toolu_01", PLAN_TOOL, GOOD), output_tokens=900))
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(api)) as http:
        roles = engines(api, http, llm)
        try:
            planner = ModelPlanner(roles.for_role("planner"), OfflinePlanner())
            spending = Spending()
            plan = await planner.plan("How do generators work?", {}, await catalog(redis, keys),
                                      spending=spending, trace=Trace(redis, keys, "think-1"))  # fmt: skip
        finally:
            await roles.aclose()
    assert plan.planner == MODEL and spending.used["tokens"] == 100 + 900  # thinking is billed as output
    [body] = api.requests
    return body


async def test_the_planner_thinks_a_modest_budget_by_default_on_top_of_its_answer(
    redis: Any, keys: Any
) -> None:
    body = await plan_with(redis, keys, None)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": PLANNER_THINKING}
    assert body["max_tokens"] == MAX_TOKENS + PLANNER_THINKING


async def test_config_sets_the_planners_thinking_or_turns_it_off(redis: Any, keys: Any) -> None:
    body = await plan_with(redis, keys, {"planner": {"thinking": 5000, "maxTokens": 1000}})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 5000} and body["max_tokens"] == 6000
    body = await plan_with(redis, keys, {"planner": {"thinking": 0}})
    assert "thinking" not in body and body["max_tokens"] == MAX_TOKENS


async def test_synthesis_and_other_agents_think_only_when_configured() -> None:
    api = MessagesAPI(message(text("an answer")), message(THOUGHT, text("a thought-through answer")))
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(api)) as http:
        roles = engines(api, http, None)
        assert roles.for_role("synthesis") is roles.default
        await run_tool_loop(roles.default, system="", prompt="hi")
        thinking = engines(api, http, {"thinking": 3000}).default
        result = await run_tool_loop(thinking, system="", prompt="hi")
        await roles.aclose()
    assert "thinking" not in api.requests[0] and api.requests[0]["max_tokens"] == 8192
    assert api.requests[1]["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    assert api.requests[1]["max_tokens"] == 8192 + 3000 and result.text == "a thought-through answer"


async def test_a_token_budget_bounds_thinking_and_answer_together() -> None:
    api = MessagesAPI(message(text("short")), message(text("shorter")))
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(api)) as http:
        llm = engines(api, http, {"thinking": 4000}).default
        await run_tool_loop(llm, system="", prompt="hi", token_budget=3000)
        await run_tool_loop(llm, system="", prompt="hi", token_budget=1200)
    roomy, tight = api.requests
    assert roomy["max_tokens"] < 3000 and roomy["thinking"]["budget_tokens"] <= roomy["max_tokens"] - 256
    assert (
        "thinking" not in tight and tight["max_tokens"] < 1200
    )  # too little left to think the API's minimum
