"""The OpenAI-compatible engine against a fake Chat Completions server on a real loopback socket:
JSON and SSE replies, tool calls both ways, usage and price, retries honouring retry-after, and one
line for each failure (a rejected key, an unknown model, an unreachable server, a model without tools)
that never shows the key."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from podium.agents.host.tools import ToolSpec
from podium.agents.llm import (
    LLMAuthError,
    LLMBadRequest,
    LLMRateLimited,
    LLMToolsUnsupported,
    LLMUnavailable,
    Message,
    RetryPolicy,
    ToolCall,
    ToolResultBlock,
    engine_from_env,
    run_tool_loop,
)
from podium.agents.llm.openai_engine import OpenAIEngine
from podium.agents.llm.settings import LlmConfig, LLMConfigError
from tests.agents.openai_fake import Error, FakeOpenAI, Turn, serve
from tests.agents.test_llm_support import Calculator

pytestmark = pytest.mark.anyio

KEY = "sk-test-openai-key-never-shown"
SEARCH = ToolSpec(
    "docs__search",
    "Search the docs.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with serve(FakeOpenAI()) as server:
        yield server


class Sleeps:
    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


def engine(fake: FakeOpenAI, **options: Any) -> OpenAIEngine:
    options.setdefault("retry", RetryPolicy(max_attempts=3, sleep=Sleeps(), rand=lambda: 0.0))
    return OpenAIEngine(base_url=fake.url, api_key=KEY, model="fake-model", **options)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_call_comes_back_and_its_result_goes_out_as_a_tool_message(
    fake: FakeOpenAI, stream: bool
) -> None:
    fake.script(
        Turn(tool_calls=[("call_1", "docs__search", {"query": "with statement"})], usage=(50, 9)),
        Turn(text="The with statement uses a context manager [with].", usage=(80, 12)),
    )
    async with engine(fake, stream=stream) as llm:
        first = await llm.complete(
            system="Be brief.", messages=[Message.user("What is with?")], tools=[SEARCH], max_tokens=300
        )
        assert first.tool_calls == [ToolCall("call_1", "docs__search", {"query": "with statement"})]
        assert (first.stop_reason, first.engine, first.model) == ("tool_use", "openai", "fake-model")
        assert (first.usage.input_tokens, first.usage.output_tokens) == (50, 9)
        answer = await llm.complete(
            system="Be brief.",
            messages=[
                Message.user("What is with?"),
                first.message,
                Message("user", [ToolResultBlock("call_1", '{"hits": []}', is_error=True)]),
            ],
            tools=[SEARCH],
            max_tokens=300,
        )
    assert (
        answer.text == "The with statement uses a context manager [with]."
        and answer.stop_reason == "end_turn"
    )
    sent = fake.bodies[0]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is with?"},
    ]
    assert sent["tools"] == [{"type": "function", "function": {"name": "docs__search",
                              "description": "Search the docs.", "parameters": SEARCH.input_schema}}]  # fmt: skip
    assert sent["max_tokens"] == 300 and sent["model"] == "fake-model"
    assert bool(sent.get("stream")) is stream
    assert fake.headers[0]["authorization"] == f"Bearer {KEY}"
    assistant, tool = fake.bodies[1]["messages"][2:]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "docs__search",
        "arguments": '{"query": "with statement"}',
    }
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": 'Error: {"hits": []}'}


async def test_the_tool_loop_runs_real_tools_through_the_engine(fake: FakeOpenAI) -> None:
    def model(body: dict[str, Any]) -> Turn:
        last = body["messages"][-1]
        if last["role"] == "tool":
            return Turn(text=f"It is {last['content']}.")
        return Turn(tool_calls=[("c1", "multiply", {"a": 0.15, "b": 240})])

    fake.script(model)
    calculator = Calculator()
    async with engine(fake) as llm:
        result = await run_tool_loop(llm, system="", prompt="15% of 240?", tools=calculator)
    assert result.stop_reason == "end_turn" and "36" in result.text
    assert calculator.calls == [("multiply", {"a": 0.15, "b": 240})] and result.turns == 2


async def test_rate_limited_with_retry_after_is_retried_after_that_wait(fake: FakeOpenAI) -> None:
    sleeps = Sleeps()
    fake.script(Error(429, "Rate limit reached", "rate_limit_error", {"retry-after": "2"}), Turn(text="ok"))
    async with engine(fake, retry=RetryPolicy(max_attempts=3, sleep=sleeps)) as llm:
        answer = await llm.complete(system="", messages=[Message.user("hi")], tools=[], max_tokens=10)
    assert answer.text == "ok" and sleeps.waited == [2.0] and len(fake.bodies) == 2


async def test_rate_limited_on_every_attempt_says_so_in_one_line(fake: FakeOpenAI) -> None:
    fake.script(*[Error(429, "Rate limit reached", "rate_limit_error", {"retry-after": "1"})] * 3)
    with pytest.raises(LLMRateLimited) as caught:
        async with engine(fake) as llm:
            await llm.complete(system="", messages=[Message.user("hi")], tools=[], max_tokens=10)
    assert caught.value.attempts == 3 and caught.value.retry_after == 1.0
    assert "after 3 attempt(s)" in str(caught.value) and "\n" not in str(caught.value)


async def test_server_errors_are_retried_with_backoff(fake: FakeOpenAI) -> None:
    sleeps = Sleeps()
    fake.script(Error(503, "overloaded", "server_error"), Error(500, "boom", "server_error"), Turn(text="ok"))
    async with engine(
        fake, retry=RetryPolicy(max_attempts=3, base_delay=0.5, sleep=sleeps, rand=lambda: 0.0)
    ) as llm:
        assert (
            await llm.complete(system="", messages=[Message.user("x")], tools=[], max_tokens=5)
        ).text == "ok"
    assert sleeps.waited == [0.5, 1.0]


async def test_a_rejected_key_fails_at_once_in_one_line_without_the_key(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script(Error(401, f"Incorrect API key provided: {KEY}", "invalid_request_error"))
    with pytest.raises(LLMAuthError) as caught:
        async with engine(fake) as llm:
            await llm.complete(system="", messages=[Message.user("hi")], tools=[], max_tokens=10)
    message = str(caught.value)
    assert "OPENAI_API_KEY" in message and "\n" not in message and len(fake.bodies) == 1
    assert KEY not in message and KEY not in caplog.text and KEY not in repr(llm)


async def test_an_unknown_model_names_the_model_and_the_fix(fake: FakeOpenAI) -> None:
    fake.script(Error(404, 'model "nope:7b" not found, try pulling it first', "not_found_error"))
    with pytest.raises(LLMBadRequest) as caught:
        async with engine(fake) as llm:
            await llm.complete(system="", messages=[Message.user("hi")], tools=[], max_tokens=10)
    assert "'fake-model'" in str(caught.value) and "PODIUM_MODEL" in str(caught.value)
    assert caught.value.status == 404 and len(fake.bodies) == 1


async def test_an_unreachable_server_is_retried_then_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    sleeps = Sleeps()
    llm = OpenAIEngine(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, model="m",
                       retry=RetryPolicy(max_attempts=2, sleep=sleeps))  # fmt: skip
    with pytest.raises(LLMUnavailable) as caught:
        async with llm:
            await llm.complete(system="", messages=[Message.user("hi")], tools=[], max_tokens=10)
    message = str(caught.value)
    assert (
        f"127.0.0.1:{port}/v1" in message and "OPENAI_BASE_URL" in message and "after 2 attempt(s)" in message
    )
    assert len(sleeps.waited) == 1 and KEY not in message


async def test_a_model_without_tools_is_named_and_later_calls_without_tools_still_work(
    fake: FakeOpenAI,
) -> None:
    fake.script(
        Error(400, "registry.ollama.ai/library/gemma:2b does not support tools"),
        Turn(text="plain answer"),
    )
    async with engine(fake) as llm:
        with pytest.raises(LLMToolsUnsupported) as caught:
            await llm.complete(system="", messages=[Message.user("hi")], tools=[SEARCH], max_tokens=10)
        assert "does not support tool calls" in str(caught.value) and "PODIUM_MODEL" in str(caught.value)
        with pytest.raises(LLMToolsUnsupported):  # known now: not asked again
            await llm.complete(system="", messages=[Message.user("hi")], tools=[SEARCH], max_tokens=10)
        assert len(fake.bodies) == 1
        answer = await llm.complete(system="", messages=[Message.user("hi")], tools=[], max_tokens=10)
    assert answer.text == "plain answer"


async def test_usage_is_estimated_when_the_server_reports_none_and_local_models_cost_nothing(
    fake: FakeOpenAI,
) -> None:
    fake.script(Turn(text="an answer of some length", usage=None), Turn(text="x", usage=(1000, 1000)))
    async with engine(fake) as llm:
        first = await llm.complete(system="", messages=[Message.user("hi")], tools=[], max_tokens=10)
        assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
        assert first.usage.cost == 0.0  # a server on loopback: free
    async with engine(fake, price=(2.0, 8.0)) as llm:
        second = await llm.complete(system="", messages=[Message.user("hi")], tools=[], max_tokens=10)
    assert second.usage.cost == pytest.approx((1000 * 2.0 + 1000 * 8.0) / 1e6)


def test_the_provider_follows_the_environment() -> None:
    assert engine_from_env({}) is None
    claude = {"ANTHROPIC_API_KEY": "sk-ant-x"}
    local = {"OPENAI_BASE_URL": "http://localhost:11434/v1", "PODIUM_MODEL": "llama3.1"}
    assert engine_from_env(claude).name == "anthropic"  # type: ignore[union-attr]
    chosen = engine_from_env(local)
    assert isinstance(chosen, OpenAIEngine) and chosen.model == "llama3.1"
    assert chosen.base_url == "http://localhost:11434/v1" and chosen.stream
    assert engine_from_env({**claude, **local}).name == "anthropic"  # type: ignore[union-attr]
    assert engine_from_env({**claude, **local, "PODIUM_LLM_PROVIDER": "openai"}).name == "openai"  # type: ignore[union-attr]
    assert engine_from_env({**claude, "PODIUM_LLM_PROVIDER": "offline"}) is None
    assert engine_from_env({"OPENAI_API_KEY": "sk-x"}).base_url == "https://api.openai.com/v1"  # type: ignore[union-attr]
    assert not engine_from_env({**local, "PODIUM_LLM_STREAM": "0"}).stream  # type: ignore[union-attr]
    with pytest.raises(LLMConfigError, match="PODIUM_LLM_PROVIDER must be one of"):
        engine_from_env({"PODIUM_LLM_PROVIDER": "gemini"})
    with pytest.raises(LLMConfigError, match="needs OPENAI_BASE_URL"):
        engine_from_env({"PODIUM_LLM_PROVIDER": "openai"})
    with pytest.raises(LLMConfigError, match="needs ANTHROPIC_API_KEY"):
        engine_from_env({**local, "PODIUM_LLM_PROVIDER": "anthropic"})


def test_an_agents_llm_config_picks_its_own_provider_and_model() -> None:
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-x",
        "OPENAI_BASE_URL": "http://localhost:11434/v1",
        "PODIUM_MODEL": "m0",
    }
    llm = LlmConfig.model_validate({"provider": "openai", "model": "qwen2.5:7b", "maxTokens": 512,
                                    "synthesis": {"provider": "anthropic", "model": "claude-opus-5"}})  # fmt: skip
    mine = engine_from_env(env, llm=llm)
    assert isinstance(mine, OpenAIEngine) and (mine.model, mine.max_tokens) == ("qwen2.5:7b", 512)
    synth = engine_from_env(env, llm=llm, role="synthesis")
    assert (synth.name, synth.model, synth.max_tokens) == ("anthropic", "claude-opus-5", 512)  # type: ignore[union-attr]
    # a provider the environment has no key for: that agent runs offline rather than failing to start
    assert (
        engine_from_env({"OPENAI_BASE_URL": "http://localhost:1/v1"}, llm=LlmConfig(provider="anthropic"))
        is None
    )


def test_the_engine_is_exported_from_the_llm_layer() -> None:
    import podium.agents.llm as llm

    assert llm.OpenAIEngine is OpenAIEngine and "OpenAIEngine" in llm.__all__
    assert isinstance(OpenAIEngine(base_url="http://localhost:1/v1"), llm.Engine)


async def test_the_loops_limits_hold_over_this_engine(fake: FakeOpenAI) -> None:
    fake.script(lambda body: Turn(tool_calls=[("c", "add", {"a": 1, "b": 2})]))  # a model stuck on one call
    async with engine(fake) as llm:
        stuck = await run_tool_loop(llm, system="", prompt="1+2?", tools=Calculator())
        assert stuck.stop_reason == "repeated_tool_call" and len(stuck.tool_calls) == 1
        fake.script(
            lambda body: Turn(
                tool_calls=[(f"c{len(body['messages'])}", "add", {"a": len(body["messages"]), "b": 1})]
            )
        )
        busy = await run_tool_loop(llm, system="", prompt="count", tools=Calculator(), max_turns=3)
        assert busy.stop_reason == "max_turns" and busy.turns == 3
        budgeted = await run_tool_loop(llm, system="", prompt="count", tools=Calculator(), token_budget=300)
    assert budgeted.stop_reason == "token_budget" and budgeted.usage.total <= 300
