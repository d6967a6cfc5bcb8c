"""AnthropicEngine against a fake Messages API (httpx2.MockTransport, real response shapes): what it
sends, what it returns, how it retries and how it fails."""

from __future__ import annotations

import email.utils

import httpx2
import pytest

import podium.agents.llm as llm_package
from podium.agents.host.tools import ToolSpec
from podium.agents.llm import (
    DEFAULT_MODEL,
    AnthropicEngine,
    Engine,
    LLMAuthError,
    LLMBadRequest,
    LLMError,
    LLMRateLimited,
    LLMUnavailable,
    Message,
    OpaqueBlock,
    RetryPolicy,
    ScriptedEngine,
    TextBlock,
    ToolCall,
    ToolResultBlock,
    Usage,
    engine_from_env,
)
from podium.agents.llm.retry import retry_after_seconds
from tests.agents.test_llm_support import (
    API_KEY,
    MODEL,
    Calculator,
    MessagesAPI,
    Sleeps,
    anthropic_engine,
    error,
    message,
    text,
    tool_use,
)

pytestmark = pytest.mark.anyio


async def test_text_answer_and_the_request_sent() -> None:
    api = MessagesAPI(message(text("Paris."), input_tokens=31, output_tokens=4, cache_read=9))
    async with anthropic_engine(api) as engine:
        done = await engine.complete(
            system="You answer in one word.",
            messages=[Message.user("Capital of France?")],
            tools=Calculator().specs()[:1],
            max_tokens=256,
        )

    assert done.text == "Paris."
    assert done.tool_calls == []
    assert done.stop_reason == "end_turn"
    assert done.model == MODEL and done.engine == "anthropic"
    assert done.usage == Usage(input_tokens=40, output_tokens=4, cost=0.00018)  # cache reads count as input
    assert done.message == Message("assistant", [TextBlock("Paris.")])

    [sent] = api.requests
    assert sent["model"] == MODEL
    assert sent["max_tokens"] == 256
    assert sent["system"] == "You answer in one word."
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}]
    assert sent["tools"] == [
        {
            "name": "add",
            "description": "Add two numbers.",
            "input_schema": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        }
    ]
    assert "tool_choice" not in sent and "temperature" not in sent  # both are rejected by current models
    assert API_KEY in api.headers[0].get("authorization", "") + api.headers[0].get("x-api-key", "")


async def test_no_tools_and_no_system_are_left_out() -> None:
    api = MessagesAPI(message(text("hi")))
    async with anthropic_engine(api) as engine:
        await engine.complete(system="", messages=[Message.user("hello")], tools=[], max_tokens=16)
    assert "tools" not in api.requests[0] and "system" not in api.requests[0]


async def test_tool_use_comes_back_as_tool_calls_and_results_go_out_as_tool_result_blocks() -> None:
    api = MessagesAPI(
        message(text("Let me compute."), tool_use("toolu_01A", "add", {"a": 2, "b": 3}), input_tokens=300),
        message(text("2 + 3 = 5, and 1/0 is undefined.")),
    )
    async with anthropic_engine(api) as engine:
        first = await engine.complete(
            system="", messages=[Message.user("2+3? 1/0?")], tools=Calculator().specs(), max_tokens=512
        )
        assert first.stop_reason == "tool_use"
        assert first.text == "Let me compute."
        assert first.tool_calls == [ToolCall("toolu_01A", "add", {"a": 2, "b": 3})]
        conversation = [
            Message.user("2+3? 1/0?"),
            first.message,
            Message(
                "user",
                [ToolResultBlock("toolu_01A", "5"), ToolResultBlock("toolu_01B", "division by zero", True)],
            ),
        ]
        second = await engine.complete(system="", messages=conversation, tools=[], max_tokens=512)
    assert second.text == "2 + 3 = 5, and 1/0 is undefined."

    sent = api.requests[1]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me compute."},
            {"type": "tool_use", "id": "toolu_01A", "name": "add", "input": {"a": 2, "b": 3}},
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "5"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01B",
                "content": "division by zero",
                "is_error": True,
            },
        ],
    }


async def test_thinking_blocks_go_back_verbatim_and_only_to_the_model_that_wrote_them() -> None:
    thinking = {"type": "thinking", "thinking": "2 and 3 make 5.", "signature": "EqQBCkgIARABGAIiQL=="}
    api = MessagesAPI(
        message(thinking, tool_use("toolu_01A", "add", {"a": 2, "b": 3})),
        message(text("5")),
        message(text("5")),
    )
    async with anthropic_engine(api) as engine:
        first = await engine.complete(
            system="", messages=[Message.user("2+3")], tools=Calculator().specs(), max_tokens=64
        )
        assert first.content[0] == OpaqueBlock("anthropic", MODEL, thinking)
        conversation = [
            Message.user("2+3"),
            first.message,
            Message("user", [ToolResultBlock("toolu_01A", "5")]),
        ]
        await engine.complete(system="", messages=conversation, tools=Calculator().specs(), max_tokens=64)
        engine.model = "claude-opus-5-5"
        await engine.complete(system="", messages=conversation, tools=Calculator().specs(), max_tokens=64)

    assert api.requests[1]["messages"][1]["content"][0] == thinking
    assert [b["type"] for b in api.requests[2]["messages"][1]["content"]] == ["tool_use"]


async def test_empty_text_is_not_sent() -> None:
    api = MessagesAPI(message(text("ok")))
    async with anthropic_engine(api) as engine:
        await engine.complete(
            system="",
            messages=[Message.user("go"), Message.assistant(""), Message.user("")],
            tools=[],
            max_tokens=8,
        )
    assert api.requests[0]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "go"}]}]


async def test_rate_limited_with_retry_after_then_success_returns_one_result() -> None:
    sleeps = Sleeps()
    api = MessagesAPI(
        error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            {"retry-after": "2"},
        ),
        message(text("done")),
    )
    async with anthropic_engine(api, sleeps=sleeps) as engine:
        done = await engine.complete(system="", messages=[Message.user("go")], tools=[], max_tokens=8)
    assert done.text == "done"
    assert len(api.requests) == 2
    assert api.requests[0] == api.requests[1]
    assert sleeps.delays == [2.0]  # the server's hint, not the backoff


async def test_retry_after_ms_wins_over_retry_after() -> None:
    sleeps = Sleeps()
    api = MessagesAPI(
        error(529, "overloaded_error", "Overloaded", {"retry-after-ms": "250", "retry-after": "9"}),
        message(text("done")),
    )
    async with anthropic_engine(api, sleeps=sleeps) as engine:
        await engine.complete(system="", messages=[Message.user("go")], tools=[], max_tokens=8)
    assert sleeps.delays == [0.25]


async def test_overloaded_until_attempts_run_out_raises_llm_unavailable_with_backoff() -> None:
    sleeps = Sleeps()
    api = MessagesAPI(*[error(529, "overloaded_error", "Overloaded") for _ in range(3)])
    async with anthropic_engine(api, sleeps=sleeps, max_attempts=3) as engine:
        with pytest.raises(
            LLMUnavailable, match=r"overloaded \(529 overloaded_error: Overloaded\) after 3 attempt"
        ) as info:
            await engine.complete(system="", messages=[Message.user("go")], tools=[], max_tokens=8)
    assert not isinstance(info.value, LLMRateLimited)
    assert (info.value.status, info.value.attempts) == (529, 3)
    assert info.value.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"
    assert len(api.requests) == 3
    assert sleeps.delays == [0.5, 1.0]  # exponential, jitter pinned to zero


async def test_rate_limited_on_every_attempt_raises_llm_rate_limited() -> None:
    api = MessagesAPI(*[error(429, "rate_limit_error", "slow down", {"retry-after": "1"}) for _ in range(2)])
    async with anthropic_engine(api, max_attempts=2) as engine:
        with pytest.raises(LLMRateLimited, match=r"rate limit.*after 2 attempt.*wait 1s") as info:
            await engine.complete(system="", messages=[Message.user("go")], tools=[], max_tokens=8)
    assert info.value.retry_after == 1.0 and info.value.attempts == 2


async def test_a_retry_after_longer_than_the_policy_allows_fails_at_once() -> None:
    sleeps = Sleeps()
    api = MessagesAPI(error(429, "rate_limit_error", "slow down", {"retry-after": "3600"}))
    async with anthropic_engine(api, sleeps=sleeps) as engine:
        with pytest.raises(LLMRateLimited) as info:
            await engine.complete(system="", messages=[Message.user("go")], tools=[], max_tokens=8)
    assert info.value.retry_after == 3600.0 and info.value.attempts == 1
    assert sleeps.delays == []


async def test_server_errors_and_connection_errors_are_retried() -> None:
    def refuse(body: object) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused")

    sleeps = Sleeps()
    api = MessagesAPI(error(500, "api_error", "Internal server error"), refuse, message(text("up again")))
    async with anthropic_engine(api, sleeps=sleeps) as engine:
        done = await engine.complete(system="", messages=[Message.user("go")], tools=[], max_tokens=8)
    assert done.text == "up again"
    assert sleeps.delays == [0.5, 1.0]


async def test_the_api_can_forbid_a_retry() -> None:
    api = MessagesAPI(error(500, "api_error", "Internal server error", {"x-should-retry": "false"}))
    async with anthropic_engine(api) as engine:
        with pytest.raises(LLMUnavailable, match="after 1 attempt") as info:
            await engine.complete(system="", messages=[Message.user("go")], tools=[], max_tokens=8)
    assert len(api.requests) == 1 and info.value.status == 500


async def test_unreachable_api_raises_llm_unavailable() -> None:
    def refuse(body: object) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused")

    api = MessagesAPI(refuse, refuse)
    async with anthropic_engine(api, max_attempts=2) as engine:
        with pytest.raises(
            LLMUnavailable, match=r"could not reach the Anthropic API after 2 attempt.*refused"
        ):
            await engine.complete(system="", messages=[Message.user("go")], tools=[], max_tokens=8)


async def test_bad_key_raises_auth_error_at_once_without_showing_the_key() -> None:
    api = MessagesAPI(error(401, "authentication_error", "invalid x-api-key"))
    async with anthropic_engine(api) as engine:
        with pytest.raises(LLMAuthError, match="check ANTHROPIC_API_KEY") as info:
            await engine.complete(system="", messages=[Message.user("go")], tools=[], max_tokens=8)
    assert len(api.requests) == 1
    assert info.value.status == 401
    assert "invalid x-api-key" in str(info.value)
    assert API_KEY not in str(info.value) and API_KEY not in repr(engine)


@pytest.mark.parametrize(
    ("status", "kind", "raised", "hint"),
    [
        (400, "invalid_request_error", LLMBadRequest, "rejected the request"),
        (403, "permission_error", LLMAuthError, "ANTHROPIC_API_KEY may use model"),
        (404, "not_found_error", LLMBadRequest, "PODIUM_MODEL"),
    ],
)
async def test_client_errors_are_not_retried(
    status: int, kind: str, raised: type[LLMError], hint: str
) -> None:
    api = MessagesAPI(error(status, kind, "nope"))
    async with anthropic_engine(api) as engine:
        with pytest.raises(raised, match=hint) as info:
            await engine.complete(system="", messages=[Message.user("go")], tools=[], max_tokens=8)
    assert len(api.requests) == 1 and info.value.status == status


async def test_a_tool_name_the_api_would_reject_fails_before_any_request() -> None:
    api = MessagesAPI()
    async with anthropic_engine(api) as engine:
        with pytest.raises(LLMBadRequest, match="tool name 'files/read'"):
            await engine.complete(
                system="",
                messages=[Message.user("go")],
                tools=[ToolSpec("files/read", "", {"type": "object"})],
                max_tokens=8,
            )
    assert api.requests == []


async def test_engine_from_env_is_none_offline_and_configured_otherwise() -> None:
    assert engine_from_env({}) is None
    assert engine_from_env({"ANTHROPIC_API_KEY": "  "}) is None

    engine = engine_from_env({"ANTHROPIC_API_KEY": API_KEY})
    assert isinstance(engine, AnthropicEngine) and engine.model == DEFAULT_MODEL
    await engine.aclose()

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(MessagesAPI(message(text("hi"))))) as http:
        engine = engine_from_env(
            {"ANTHROPIC_API_KEY": API_KEY, "PODIUM_MODEL": "claude-haiku-5-5"}, http_client=http
        )
        assert isinstance(engine, AnthropicEngine)
        done = await engine.complete(system="", messages=[Message.user("hi")], tools=[], max_tokens=8)
        assert engine.model == "claude-haiku-5-5" and done.text == "hi"
        await engine.aclose()


async def test_engines_satisfy_the_protocol_and_close_only_what_they_own() -> None:
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(MessagesAPI())) as http:
        engine: Engine = AnthropicEngine(api_key=API_KEY, http_client=http)
        scripted: Engine = ScriptedEngine([])
        assert isinstance(engine, Engine) and isinstance(scripted, Engine)
        assert isinstance(engine, AnthropicEngine)
        await engine.aclose()
        assert not http.is_closed  # the caller's client stays the caller's


def test_default_model_is_current() -> None:
    from anthropic.resources.messages.messages import DEPRECATED_MODELS

    # a deprecated default would warn on every call (and fail this suite: filterwarnings = error)
    assert DEFAULT_MODEL not in DEPRECATED_MODELS


async def test_no_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(LLMAuthError, match="ANTHROPIC_API_KEY is not set"):
        AnthropicEngine()


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds(httpx2.Headers({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(httpx2.Headers({"retry-after": "0.5"})) == 0.5
    assert retry_after_seconds(httpx2.Headers({"retry-after-ms": "1500"})) == 1.5
    assert retry_after_seconds(httpx2.Headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(httpx2.Headers({})) is None
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert retry_after_seconds(httpx2.Headers({"retry-after": date}), now=1_000_000.0) == 30.0


def test_retry_policy_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.5, rand=lambda: 1.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]
    assert policy.delay(1, retry_after=7.0) == 7.0
    assert policy.gives_up(4) and not policy.gives_up(3)
    assert policy.gives_up(1, retry_after=61.0)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_exported_members() -> None:
    exported = set(llm_package.__all__)
    assert all(getattr(llm_package, name) is not None for name in exported)  # some load on first use
    public = {name for name in vars(llm_package) if not name.startswith("_")}
    assert {"Engine", "AnthropicEngine", "run_tool_loop", "engine_from_env", "LLMError"} <= exported
    assert public - exported <= {
        "TYPE_CHECKING",  # for the names loaded on first use
        "Any",
        "anthropic_engine",
        "engine",
        "errors",
        "loop",
        "messages",
        "openai_engine",
        "prices",
        "retry",
        "scripted",
        "settings",
        "wire",
    }
