"""An :class:`~agents.llm.engine.Engine` that replays scripted turns: a test double for agents that
use a model, like ``httpx.MockTransport`` is for HTTP clients."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from podium.agents.host.tools import ToolSpec
from podium.agents.llm.errors import LLMError
from podium.agents.llm.messages import Completion, Message, TextBlock, ToolCall, Usage
from podium.agents.llm.prices import cost, price_for


@dataclass(frozen=True, slots=True)
class EngineRequest:
    """What one ``complete`` call was asked."""

    system: str
    messages: list[Message]
    tools: list[ToolSpec]
    max_tokens: int


Reply = str | list[ToolCall] | Completion | Callable[[EngineRequest], "str | list[ToolCall] | Completion"]


class ScriptedEngine:
    """Answers each ``complete`` call with the next reply: a ``str`` (a final answer), a list of
    ``ToolCall`` (a tool-use turn), a ``Completion``, or a callable given the :class:`EngineRequest`
    that returns one of those. Every request is kept in :attr:`requests`. ``usage`` is charged for
    replies that are not a ``Completion``, priced like a real model's (:mod:`agents.llm.prices`).

    ``complete`` raises ``LLMError`` when the script has no reply left.
    """

    name = "scripted"

    def __init__(
        self, replies: Iterable[Reply], *, model: str = "scripted", usage: Usage | None = None
    ) -> None:
        self.model = model
        self.usage = usage or Usage(10, 5)
        self.requests: list[EngineRequest] = []
        self._replies = list(replies)

    async def aclose(self) -> None:
        """Nothing to release; here so code that closes its engine can close this one too."""

    async def complete(
        self, *, system: str, messages: list[Message], tools: list[ToolSpec], max_tokens: int
    ) -> Completion:
        request = EngineRequest(system, list(messages), list(tools), max_tokens)
        self.requests.append(request)
        if not self._replies:
            raise LLMError(f"ScriptedEngine has no reply left for call {len(self.requests)}")
        reply = self._replies.pop(0)
        answer = reply(request) if callable(reply) else reply
        if isinstance(answer, Completion):
            return replace(answer, usage=self.priced(answer.usage))
        usage = self.priced(self.usage)
        if isinstance(answer, str):
            return Completion(answer, [], usage, "end_turn", self.model, self.name, [TextBlock(answer)])
        return Completion("", list(answer), usage, "tool_use", self.model, self.name, list(answer))

    def priced(self, usage: Usage) -> Usage:
        """``usage`` with its cost at the price table's rate for :attr:`model`, unless it has one."""
        if usage.cost or not usage.total:
            return usage
        return Usage(
            usage.input_tokens,
            usage.output_tokens,
            cost(price_for(self.model), usage.input_tokens, usage.output_tokens),
        )
