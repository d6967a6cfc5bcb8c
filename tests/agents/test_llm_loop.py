"""run_tool_loop driving real ToolBoxes, with Claude played by a fake Messages API (or a ScriptedEngine)
that reads the tool results it is sent, as a model would."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from podium.agents.host.tools import ToolResult, ToolSpec
from podium.agents.llm import (
    EngineRequest,
    LLMUnavailable,
    Message,
    ScriptedEngine,
    ToolCall,
    ToolCallRecord,
    ToolResultBlock,
    Usage,
    call_key,
    run_tool_loop,
)
from podium.bus.envelope import Budget
from tests.agents.test_llm_support import (
    MODEL,
    Calculator,
    MessagesAPI,
    anthropic_engine,
    error,
    message,
    text,
    tool_results,
    tool_use,
)

pytestmark = pytest.mark.anyio

SYSTEM = "You are a careful calculator. Use the tools for every step."


async def test_a_multi_step_calculation_runs_real_tools_over_several_turns() -> None:
    # the "model" chains on whatever the tools actually returned
    def second(body: dict[str, Any]) -> dict[str, Any]:
        [result] = tool_results(body)
        return message(
            tool_use("toolu_02", "multiply", {"a": float(result["content"]), "b": 7}), input_tokens=250
        )

    def third(body: dict[str, Any]) -> dict[str, Any]:
        [result] = tool_results(body)
        return message(text(f"(2 + 3) × 7 = {result['content']}"), input_tokens=320, output_tokens=12)

    api = MessagesAPI(
        message(text("First the sum."), tool_use("toolu_01", "add", {"a": 2, "b": 3}), input_tokens=180),
        second,
        third,
    )
    calculator = Calculator()
    async with anthropic_engine(api) as engine:
        result = await run_tool_loop(engine, system=SYSTEM, prompt="What is (2 + 3) × 7?", tools=calculator)

    assert result.text == "(2 + 3) × 7 = 35"
    assert result.stop_reason == "end_turn" and result.model_stop_reason == "end_turn"
    assert result.turns == 3
    assert result.usage == Usage(input_tokens=180 + 250 + 320, output_tokens=20 + 20 + 12, cost=0.00303)
    assert (result.engine, result.model) == ("anthropic", MODEL)
    assert calculator.calls == [("add", {"a": 2, "b": 3}), ("multiply", {"a": 5.0, "b": 7})]
    assert result.tool_calls == [
        ToolCallRecord("add", {"a": 2, "b": 3}, is_error=False, turn=1),
        ToolCallRecord("multiply", {"a": 5.0, "b": 7}, is_error=False, turn=2),
    ]

    # every turn sees the system prompt, the tools and the whole conversation so far
    assert all(r["system"] == SYSTEM for r in api.requests)
    assert all([t["name"] for t in r["tools"]] == ["add", "multiply", "divide", "sqrt"] for r in api.requests)
    assert tool_results(api.requests[1]) == [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "5"}
    ]
    assert tool_results(api.requests[2]) == [
        {"type": "tool_result", "tool_use_id": "toolu_02", "content": "35"}
    ]
    assert [m["role"] for m in api.requests[2]["messages"]] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert [m.role for m in result.messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]


async def test_tool_errors_go_back_to_the_model_which_can_recover() -> None:
    def recover(body: dict[str, Any]) -> dict[str, Any]:
        [result] = tool_results(body)
        assert result == {
            "type": "tool_result",
            "tool_use_id": "toolu_01",
            "content": "division by zero",
            "is_error": True,
        }
        return message(tool_use("toolu_02", "sqrt", {"x": 16}))

    api = MessagesAPI(
        message(tool_use("toolu_01", "divide", {"a": 1, "b": 0})),
        recover,
        message(text("1/0 is undefined; √16 = 4.")),
    )
    async with anthropic_engine(api) as engine:
        result = await run_tool_loop(engine, system=SYSTEM, prompt="1/0, else √16", tools=Calculator())

    assert result.stop_reason == "end_turn" and result.text == "1/0 is undefined; √16 = 4."
    assert [(c.name, c.is_error) for c in result.tool_calls] == [("divide", True), ("sqrt", False)]
    assert tool_results(api.requests[2])[0]["content"] == "4"


async def test_tool_calls_in_one_turn_run_concurrently_and_results_keep_their_order() -> None:
    class Relay:
        """'first' can only finish after 'second' started: run one after the other, this deadlocks."""

        def __init__(self) -> None:
            self.second_started = anyio.Event()

        def specs(self) -> list[ToolSpec]:
            return [ToolSpec(n, n, {"type": "object"}) for n in ("first", "second")]

        async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
            if name == "first":
                await self.second_started.wait()
                return ToolResult(text="first done")
            self.second_started.set()
            return ToolResult(text="", data={"second": "done"})

    engine = ScriptedEngine(
        [[ToolCall("c1", "first", {}), ToolCall("c2", "second", {})], lambda request: "both done"]
    )
    with anyio.fail_after(5):
        result = await run_tool_loop(engine, system="", prompt="go", tools=Relay())

    assert result.text == "both done"
    assert engine.requests[1].messages[-1] == Message(
        "user", [ToolResultBlock("c1", "first done"), ToolResultBlock("c2", '{"second": "done"}')]
    )
    assert [c.name for c in result.tool_calls] == ["first", "second"]


async def test_a_tool_that_raises_is_reported_to_the_model_as_an_error() -> None:
    class Broken:
        def specs(self) -> list[ToolSpec]:
            return [ToolSpec("lookup", "Look a word up.", {"type": "object"})]

        async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
            raise KeyError(arguments["word"])

    engine = ScriptedEngine([[ToolCall("c1", "lookup", {"word": "podium"})], "The lookup tool is broken."])
    result = await run_tool_loop(engine, system="", prompt="define podium", tools=Broken())

    [block] = engine.requests[1].messages[-1].content
    assert isinstance(block, ToolResultBlock) and block.is_error
    assert block.text == "tool lookup failed: KeyError: 'podium'"
    assert result.tool_calls == [ToolCallRecord("lookup", {"word": "podium"}, is_error=True, turn=1)]


async def test_a_model_repeating_the_same_call_is_warned_once_then_stopped() -> None:
    # a runaway model: always the same call, arguments in a different key order each time
    calls = iter(range(1, 10))

    def runaway(body: dict[str, Any]) -> dict[str, Any]:
        n = next(calls)
        args = {"a": 6, "b": 7} if n % 2 else {"b": 7, "a": 6}
        return message(text(f"Multiplying, attempt {n}."), tool_use(f"toolu_0{n}", "multiply", args))

    api = MessagesAPI(runaway, runaway, runaway, runaway)
    calculator = Calculator()
    async with anthropic_engine(api) as engine:
        result = await run_tool_loop(engine, system=SYSTEM, prompt="6 × 7?", tools=calculator, max_turns=8)

    assert result.stop_reason == "repeated_tool_call"
    assert calculator.calls == [("multiply", {"a": 6, "b": 7})]  # run exactly once
    assert result.turns == 3 and len(api.requests) == 3
    assert result.text == "Multiplying, attempt 3."

    [warning] = tool_results(api.requests[2])
    assert warning["is_error"] is True
    assert "already called multiply with exactly these arguments" in warning["content"]
    assert warning["content"].endswith("The earlier result was:\n42")


async def test_the_same_call_twice_in_one_turn_runs_once() -> None:
    calculator = Calculator()
    engine = ScriptedEngine(
        [[ToolCall("c1", "add", {"a": 1, "b": 1}), ToolCall("c2", "add", {"b": 1, "a": 1})], "2"]
    )
    result = await run_tool_loop(engine, system="", prompt="1+1", tools=calculator)
    assert calculator.calls == [("add", {"a": 1, "b": 1})]
    first, second = engine.requests[1].messages[-1].content
    assert first == ToolResultBlock("c1", "2")
    assert isinstance(second, ToolResultBlock) and second.is_error and "already called add" in second.text
    assert result.stop_reason == "end_turn"


def test_call_key_ignores_key_order_and_spacing() -> None:
    assert call_key("f", {"a": 1, "b": [1, 2]}) == call_key("f", {"b": [1, 2], "a": 1})
    assert call_key("f", {"a": 1}) != call_key("g", {"a": 1})
    assert call_key("f", {"a": 1}) != call_key("f", {"a": "1"})


async def test_token_budget_stops_the_loop_before_it_is_exceeded() -> None:
    budget = Budget(tokens=1_000)  # what a request carries on the bus

    def next_step(body: dict[str, Any]) -> dict[str, Any]:
        [result] = tool_results(body)
        return message(
            tool_use("toolu_02", "sqrt", {"x": float(result["content"])}), input_tokens=500, output_tokens=50
        )

    api = MessagesAPI(
        message(
            text("Adding first."),
            tool_use("toolu_01", "add", {"a": 7, "b": 9}),
            input_tokens=300,
            output_tokens=40,
        ),
        next_step,
    )
    async with anthropic_engine(api) as engine:
        result = await run_tool_loop(
            engine, system=SYSTEM, prompt="√(7 + 9)?", tools=Calculator(), token_budget=budget.tokens
        )

    assert result.stop_reason == "token_budget"
    assert result.usage == Usage(800, 90, 0.00375) and result.usage.total <= 1_000
    assert result.turns == 2
    assert result.text == "Adding first."
    # each turn's max_tokens is cut to what the budget still allows
    assert api.requests[0]["max_tokens"] < 1_000
    assert api.requests[1]["max_tokens"] <= 1_000 - 340 - 340
    # the second turn's sqrt never ran: there was no budget left to read its result
    assert [c.name for c in result.tool_calls] == ["add"]


async def test_a_budget_too_small_for_one_turn_makes_no_call() -> None:
    engine = ScriptedEngine(["never sent"])
    result = await run_tool_loop(engine, system=SYSTEM, prompt="hi", tools=Calculator(), token_budget=100)
    assert result.stop_reason == "token_budget" and result.turns == 0 and engine.requests == []
    assert (result.engine, result.model, result.text, result.model_stop_reason) == (
        "scripted",
        "scripted",
        "",
        None,
    )


async def test_max_turns_stops_a_model_that_never_answers() -> None:
    counter = iter(range(100))

    def keep_going(request: EngineRequest) -> list[ToolCall]:
        n = next(counter)
        return [ToolCall(f"c{n}", "add", {"a": n, "b": 1})]  # new arguments every time: not a repeat

    calculator = Calculator()
    engine = ScriptedEngine([keep_going] * 3)
    result = await run_tool_loop(engine, system="", prompt="count", tools=calculator, max_turns=3)

    assert result.stop_reason == "max_turns" and result.turns == 3
    assert len(engine.requests) == 3
    assert len(calculator.calls) == 2  # the last turn's call is not run: its result could not be read
    assert result.model_stop_reason == "tool_use"


async def test_continuing_a_conversation_from_messages() -> None:
    engine = ScriptedEngine(["4", "8"])
    first = await run_tool_loop(engine, system="", prompt="2+2?")
    follow_up = [*first.messages, Message.user("and doubled?")]
    second = await run_tool_loop(engine, system="", messages=follow_up, max_tokens_per_turn=64)
    assert second.text == "8"
    assert [m.text for m in engine.requests[1].messages] == ["2+2?", "4", "and doubled?"]
    assert engine.requests[1].max_tokens == 64 and engine.requests[1].tools == []


async def test_engine_failures_propagate() -> None:
    api = MessagesAPI(error(529, "overloaded_error", "Overloaded"))
    async with anthropic_engine(api, max_attempts=1) as engine:
        with pytest.raises(LLMUnavailable):
            await run_tool_loop(engine, system="", prompt="hi")


@pytest.mark.parametrize(
    ("kwargs", "message_match"),
    [
        ({}, "exactly one of prompt= or messages="),
        ({"prompt": "a", "messages": []}, "exactly one"),
        ({"prompt": "a", "max_turns": 0}, "max_turns"),
        ({"prompt": "a", "token_budget": -1}, "token_budget"),
        ({"prompt": "a", "max_tokens_per_turn": 0}, "max_tokens_per_turn"),
        ({"messages": [Message.user("a"), Message.assistant("b")]}, "must end with a user message"),
    ],
)
async def test_bad_arguments_are_rejected(kwargs: dict[str, Any], message_match: str) -> None:
    with pytest.raises(ValueError, match=message_match):
        await run_tool_loop(ScriptedEngine([]), system="", **kwargs)
