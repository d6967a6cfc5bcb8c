"""The LLM layer: one small :class:`Engine` interface, Claude and any OpenAI-compatible server
behind it, and the tool loop agents run.

``engine_from_env()`` gives the configured engine (``PODIUM_LLM_PROVIDER``, ``ANTHROPIC_API_KEY``,
``OPENAI_BASE_URL``/``OPENAI_API_KEY``, an agent's ``llm`` config), or ``None`` for offline mode;
agents then fall back to their deterministic behaviour. Claude's client is imported only when used
(``AnthropicEngine``, ``DEFAULT_MODEL``, or Claude chosen), so an offline agent never loads it.
"""

import typing as _typing

from podium.agents.llm.engine import Engine, engine_from_env
from podium.agents.llm.errors import (
    LLMAuthError,
    LLMBadRequest,
    LLMError,
    LLMRateLimited,
    LLMToolsUnsupported,
    LLMUnavailable,
)
from podium.agents.llm.loop import LoopResult, StopReason, ToolCallRecord, call_key, run_tool_loop
from podium.agents.llm.messages import (
    Block,
    Completion,
    Message,
    OpaqueBlock,
    TextBlock,
    ToolCall,
    ToolResultBlock,
    Usage,
)
from podium.agents.llm.retry import NO_RETRY, RetryPolicy
from podium.agents.llm.scripted import EngineRequest, ScriptedEngine

__all__ = [
    "DEFAULT_MODEL",
    "NO_RETRY",
    "AnthropicEngine",
    "Block",
    "Completion",
    "Engine",
    "EngineRequest",
    "LLMAuthError",
    "LLMBadRequest",
    "LLMError",
    "LLMRateLimited",
    "LLMToolsUnsupported",
    "LLMUnavailable",
    "LoopResult",
    "Message",
    "OpaqueBlock",
    "OpenAIEngine",
    "RetryPolicy",
    "ScriptedEngine",
    "StopReason",
    "TextBlock",
    "ToolCall",
    "ToolCallRecord",
    "ToolResultBlock",
    "Usage",
    "call_key",
    "engine_from_env",
    "run_tool_loop",
]

if _typing.TYPE_CHECKING:
    from podium.agents.llm.anthropic_engine import DEFAULT_MODEL, AnthropicEngine
    from podium.agents.llm.openai_engine import OpenAIEngine

_CLAUDE = ("AnthropicEngine", "DEFAULT_MODEL")


def __getattr__(name: str) -> _typing.Any:
    if name == "OpenAIEngine":
        from podium.agents.llm.openai_engine import OpenAIEngine

        globals()[name] = OpenAIEngine
        return OpenAIEngine
    if name not in _CLAUDE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from podium.agents.llm import anthropic_engine

    for loaded in _CLAUDE:  # imported now: from here on plain module attributes
        globals()[loaded] = getattr(anthropic_engine, loaded)
    return globals()[name]
