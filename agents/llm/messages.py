"""The engine-neutral conversation: messages made of blocks, and what one model call returns.

An engine converts these to and from its provider's wire format; the tool loop and the agents only
ever see these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class TextBlock:
    """Plain text from the user or the model."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asking for one tool call. ``id`` pairs it with its :class:`ToolResultBlock`."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResultBlock:
    """A tool's answer to the :class:`ToolCall` with id ``tool_call_id``, sent back in a user message."""

    tool_call_id: str
    text: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class OpaqueBlock:
    """A provider block that must go back to the provider verbatim (Anthropic ``thinking`` blocks carry
    a signature), and only to the engine and model that produced it: others drop it."""

    engine: str
    model: str
    data: dict[str, Any]


Block = TextBlock | ToolCall | ToolResultBlock | OpaqueBlock

_ALLOWED: dict[str, tuple[type, ...]] = {
    "user": (TextBlock, ToolResultBlock),
    "assistant": (TextBlock, ToolCall, OpaqueBlock),
}


@dataclass(slots=True)
class Message:
    """One turn of the conversation. Raises ``ValueError`` for an unknown role or a block that role
    cannot carry (tool calls come from the assistant, tool results from the user)."""

    role: Role
    content: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        allowed = _ALLOWED.get(self.role)
        if allowed is None:
            raise ValueError(f"message role must be 'user' or 'assistant', not {self.role!r}")
        for block in self.content:
            if not isinstance(block, allowed):
                raise ValueError(f"a {self.role} message cannot carry a {type(block).__name__}")

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", [TextBlock(text)])

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls("assistant", [TextBlock(text)])

    @property
    def text(self) -> str:
        """The message's text blocks, joined."""
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [b for b in self.content if isinstance(b, ToolCall)]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one call (or a sum of calls) consumed, and their estimated price. ``input_tokens``
    includes prompt-cache reads and writes, ``output_tokens`` any thinking, so ``total`` is what a
    token budget is charged; ``cost`` is USD per the engine's price table (:mod:`agents.llm.prices`)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            round(self.cost + other.cost, 8),
        )


@dataclass(frozen=True, slots=True)
class Completion:
    """What one model call returned.

    ``content`` is the whole assistant turn in order (text, tool calls and opaque blocks); ``text`` and
    ``tool_calls`` are views of it. ``stop_reason`` is the provider's (``end_turn``, ``tool_use``,
    ``max_tokens``, ``refusal``, ...).
    """

    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    stop_reason: str
    model: str
    engine: str
    content: list[Block] = field(default_factory=list)

    @property
    def message(self) -> Message:
        """The assistant message to append to the conversation before the next call."""
        return Message("assistant", list(self.content))
