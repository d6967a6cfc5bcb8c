"""The tool loop: call the model, run the tools it asks for, feed the results back, until it answers.

It stops for one of four reasons (:data:`StopReason`): the model answered (``end_turn``), the turn
limit (``max_turns``), the token budget (``token_budget``), or a model stuck repeating one tool call
(``repeated_tool_call``). Whatever the reason, the result carries the best text the model produced.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import anyio

from podium.agents.host.tools import NoTools, ToolBox, ToolResult, ToolSpec
from podium.agents.llm.engine import Engine, default_max_tokens, turn_tokens
from podium.agents.llm.messages import Message, ToolCall, ToolResultBlock, Usage

logger = logging.getLogger(__name__)

StopReason = Literal["end_turn", "max_turns", "token_budget", "repeated_tool_call"]

DEFAULT_MAX_TURNS = 8
DEFAULT_MAX_TOKENS_PER_TURN = 8192  # adaptive thinking shares this with the answer
# a turn with less output room than this is not worth starting (the model could not finish a thought)
MIN_TURN_OUTPUT_TOKENS = 128
# deliberately pessimistic (real English text is ~4 chars a token), so the budget errs on the safe side
_CHARS_PER_TOKEN = 3
_REPEAT_RESULT_CHARS = 2000


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call the loop ran, in the order the model asked for them."""

    name: str
    arguments: dict[str, Any]
    is_error: bool
    turn: int


@dataclass(slots=True)
class LoopResult:
    """How a tool loop ended.

    ``text`` is the final answer, or for a stopped loop the latest non-empty text the model wrote.
    ``model_stop_reason`` is the provider's reason for its last turn (``end_turn``, ``max_tokens``,
    ``refusal``...), ``None`` if no call was made. ``messages`` is the whole conversation, ready to
    continue.
    """

    text: str
    stop_reason: StopReason
    turns: int
    usage: Usage
    tool_calls: list[ToolCallRecord]
    engine: str
    model: str
    messages: list[Message] = field(default_factory=list)
    model_stop_reason: str | None = None


def call_key(name: str, arguments: dict[str, Any]) -> str:
    """Identity of a tool call: its name and canonical JSON arguments (key order and spacing ignored)."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"{name}\x00{canonical}"


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for text not yet sent to the model."""
    return len(text) // _CHARS_PER_TOKEN + 1


async def run_tool_loop(
    engine: Engine,
    *,
    system: str,
    prompt: str | None = None,
    messages: list[Message] | None = None,
    tools: ToolBox | None = None,
    max_turns: int = DEFAULT_MAX_TURNS,
    token_budget: int | None = None,
    max_tokens_per_turn: int | None = None,
) -> LoopResult:
    """Run the model with ``tools`` until it answers or a limit stops it.

    Start from ``prompt`` (one user message) or ``messages`` (a conversation), exactly one of them.
    Each turn is one ``engine.complete`` call. The tools a turn asks for run concurrently through
    ``ToolBox.call``; their results (errors included, flagged ``is_error``) go back in call order.

    ``token_budget`` caps input plus output tokens over all turns (a request's ``Budget.tokens``): a
    turn starts only if its estimated input plus :data:`MIN_TURN_OUTPUT_TOKENS` fits, and its
    ``max_tokens`` is cut to what is left. ``max_tokens_per_turn`` defaults to the engine's configured
    ``max_tokens`` (``llm.maxTokens``), else :data:`DEFAULT_MAX_TOKENS_PER_TURN`; an engine's thinking
    budget comes on top of it (and out of ``token_budget``). A tool call repeated with the same arguments is not run
    again: the first repeat gets a result telling the model it already has the answer, a second one
    stops the loop.

    Raises ``ValueError`` for bad arguments and ``LLMError`` when the engine fails.
    """
    if (prompt is None) == (messages is None):
        raise ValueError("run_tool_loop needs exactly one of prompt= or messages=")
    if max_turns < 1:
        raise ValueError(f"max_turns must be at least 1, not {max_turns}")
    if max_tokens_per_turn is None:
        max_tokens_per_turn = default_max_tokens(engine, DEFAULT_MAX_TOKENS_PER_TURN)
    if max_tokens_per_turn < 1:
        raise ValueError(f"max_tokens_per_turn must be at least 1, not {max_tokens_per_turn}")
    if token_budget is not None and token_budget < 0:
        raise ValueError(f"token_budget must not be negative, not {token_budget}")
    if messages is not None and (not messages or messages[-1].role != "user"):
        raise ValueError("messages= must end with a user message (the turn the model answers)")

    toolbox = tools if tools is not None else NoTools()
    specs = toolbox.specs()
    conversation = list(messages) if messages is not None else [Message.user(prompt or "")]
    state = _LoopState(engine=engine, conversation=conversation)
    next_input = _estimate_request(system, conversation, specs)
    min_output = min(MIN_TURN_OUTPUT_TOKENS, max_tokens_per_turn)

    while state.turns < max_turns:
        max_tokens = turn_tokens(engine, max_tokens_per_turn)
        if token_budget is not None:
            room = token_budget - state.usage.total - next_input
            if room < min_output:
                return state.finish("token_budget")
            max_tokens = min(max_tokens, room)

        completion = await engine.complete(
            system=system, messages=list(conversation), tools=specs, max_tokens=max_tokens
        )
        state.turns += 1
        state.usage += completion.usage
        state.model = completion.model or state.model
        state.model_stop_reason = completion.stop_reason
        conversation.append(completion.message)
        if completion.text.strip():
            state.best_text = completion.text
        logger.debug(
            "turn %d: stop %s, %d tool call(s), %d tokens so far",
            state.turns,
            completion.stop_reason,
            len(completion.tool_calls),
            state.usage.total,
        )

        if not completion.tool_calls:
            return state.finish("end_turn")
        if state.turns >= max_turns:
            break  # results of these calls could never be read: don't run them
        if (
            token_budget is not None
            and state.usage.total + completion.usage.total + min_output > token_budget
        ):
            # the next turn re-reads this whole turn: no room for it, so don't run tools for it either
            return state.finish("token_budget")

        results = await state.run_calls(toolbox, completion.tool_calls)
        if results is None:
            return state.finish("repeated_tool_call")
        conversation.append(Message("user", list(results)))
        next_input = completion.usage.total + sum(estimate_tokens(r.text) + 10 for r in results)

    return state.finish("max_turns")


@dataclass(slots=True)
class _LoopState:
    engine: Engine
    conversation: list[Message]
    turns: int = 0
    usage: Usage = field(default_factory=Usage)
    best_text: str = ""
    model: str = ""
    model_stop_reason: str | None = None
    records: list[ToolCallRecord] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # call key -> times asked
    answers: dict[str, ToolResult] = field(default_factory=dict)  # call key -> the result it got

    def finish(self, reason: StopReason) -> LoopResult:
        if reason != "end_turn":
            logger.info("tool loop stopped: %s after %d turn(s)", reason, self.turns)
        return LoopResult(
            text=self.best_text,
            stop_reason=reason,
            turns=self.turns,
            usage=self.usage,
            tool_calls=list(self.records),
            engine=self.engine.name,
            model=self.model or self.engine.model,
            messages=self.conversation,
            model_stop_reason=self.model_stop_reason,
        )

    async def run_calls(self, toolbox: ToolBox, calls: list[ToolCall]) -> list[ToolResultBlock] | None:
        """Results for one turn's calls, in order; ``None`` if a call is repeated a second time."""
        keys = [call_key(c.name, c.arguments) for c in calls]
        counts = dict(self.seen)
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
            if counts[key] > 2:
                return None
        fresh = [i for i, key in enumerate(keys) if key not in self.seen and keys.index(key) == i]
        self.seen = counts

        ran: dict[int, ToolResult] = {}

        async def run(i: int) -> None:
            ran[i] = await _call_tool(toolbox, calls[i])

        if len(fresh) == 1:
            await run(fresh[0])
        elif fresh:
            async with anyio.create_task_group() as tg:
                for i in fresh:
                    tg.start_soon(run, i)

        blocks: list[ToolResultBlock] = []
        for i, (call, key) in enumerate(zip(calls, keys, strict=True)):
            if i in ran:
                result = ran[i]
                self.answers[key] = result
                self.records.append(ToolCallRecord(call.name, call.arguments, result.is_error, self.turns))
                blocks.append(ToolResultBlock(call.id, _result_text(result), result.is_error))
            else:
                blocks.append(ToolResultBlock(call.id, _repeat_note(call, self.answers.get(key)), True))
        return blocks


async def _call_tool(toolbox: ToolBox, call: ToolCall) -> ToolResult:
    try:
        return await toolbox.call(call.name, call.arguments)
    except Exception as exc:
        # ToolBox reports failures as results; one that raises anyway must not end the agent's task:
        # the model gets the error like any other and can change course
        logger.exception("tool %s raised instead of returning an error result", call.name)
        return ToolResult(text=f"tool {call.name} failed: {type(exc).__name__}: {exc}", is_error=True)


def _result_text(result: ToolResult) -> str:
    if result.text or result.data is None:
        return result.text
    return json.dumps(result.data, ensure_ascii=False, default=str)


def _repeat_note(call: ToolCall, earlier: ToolResult | None) -> str:
    note = (
        f"Not run again: you already called {call.name} with exactly these arguments and have its result. "
        "Calling it again will not change the answer. Use that result, try different arguments or another "
        "tool, or give your final answer now."
    )
    if earlier is not None:
        text = _result_text(earlier)
        if len(text) > _REPEAT_RESULT_CHARS:
            text = text[:_REPEAT_RESULT_CHARS] + " [...]"
        note += f"\n\nThe earlier result was:\n{text}"
    return note


def _estimate_request(system: str, conversation: list[Message], specs: list[ToolSpec]) -> int:
    parts = [system]
    parts += [json.dumps(asdict(block), default=str) for message in conversation for block in message.content]
    parts += [json.dumps([s.name, s.description, s.input_schema], default=str) for s in specs]
    return sum(estimate_tokens(p) for p in parts)
