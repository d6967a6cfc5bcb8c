"""The one interface agents use to call a model, and how the process picks one from its environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from podium.agents.host.tools import ToolSpec
from podium.agents.llm.messages import Completion, Message

if TYPE_CHECKING:
    from podium.agents.llm.anthropic_engine import AnthropicEngine


@runtime_checkable
class Engine(Protocol):
    """A model that answers one conversation turn. ``name`` names the provider (``"anthropic"``),
    ``model`` the model it calls."""

    name: str
    model: str

    async def complete(
        self, *, system: str, messages: list[Message], tools: list[ToolSpec], max_tokens: int
    ) -> Completion:
        """The model's next assistant turn. Raises ``LLMError`` (or a subclass) when the call fails."""
        ...


def engine_from_env(env: Mapping[str, str] | None = None, **options: Any) -> AnthropicEngine | None:
    """The engine ``ANTHROPIC_API_KEY`` and ``PODIUM_MODEL`` describe, or ``None`` for offline mode when
    the key is unset or blank. ``options`` go to :class:`AnthropicEngine` (``http_client``, ``retry``...).

    Raises nothing for a missing key (that is offline mode). The caller owns the engine: ``await
    engine.aclose()`` (or ``async with``) when done.
    """
    env = os.environ if env is None else env
    key = env.get("ANTHROPIC_API_KEY", "").strip()
    if not key:
        return None
    # Claude's client (anthropic, httpx2: tens of MB) is loaded only by a process that has a key.
    from podium.agents.llm.anthropic_engine import DEFAULT_MODEL, AnthropicEngine

    return AnthropicEngine(api_key=key, model=env.get("PODIUM_MODEL", "").strip() or DEFAULT_MODEL, **options)
