"""The one interface agents use to call a model, and how the process picks one from its environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from podium.agents.host.tools import ToolSpec
from podium.agents.llm.messages import Completion, Message

if TYPE_CHECKING:
    from podium.agents.llm.settings import LlmConfig


@runtime_checkable
class Engine(Protocol):
    """A model that answers one conversation turn. ``name`` names the provider (``"anthropic"``,
    ``"openai"``), ``model`` the model it calls. Engines may also carry ``max_tokens`` (the agent's
    configured output tokens per call) and ``thinking_budget`` (see :func:`turn_tokens`)."""

    name: str
    model: str

    async def complete(
        self, *, system: str, messages: list[Message], tools: list[ToolSpec], max_tokens: int
    ) -> Completion:
        """The model's next assistant turn. Raises ``LLMError`` (or a subclass) when the call fails."""
        ...


def engine_from_env(
    env: Mapping[str, str] | None = None,
    *,
    llm: LlmConfig | None = None,
    role: str | None = None,
    where: str = "agent config",
    **options: Any,
) -> Engine | None:
    """The engine the environment (and an agent's ``llm`` config, for ``role``) describe, or ``None``
    for offline mode: ``PODIUM_LLM_PROVIDER``, else Claude when ``ANTHROPIC_API_KEY`` is set, the
    OpenAI-compatible engine when ``OPENAI_BASE_URL`` or ``OPENAI_API_KEY`` is, else offline (see
    :mod:`agents.llm.settings`). ``options`` go to the engine (``http_client``, ``retry``...).

    Raises ``LLMConfigError`` (a ``ValueError``) for a provider that is unknown or lacks its key or
    URL. The caller owns the engine: ``await engine.aclose()`` (or ``async with``) when done.
    """
    from podium.agents.llm.settings import build_engine

    env = os.environ if env is None else env
    return cast("Engine | None", build_engine(llm, env, role=role, where=where, **options))


def turn_tokens(engine: Any, answer_tokens: int) -> int:
    """``max_tokens`` for a call that should leave ``answer_tokens`` for the answer: plus the engine's
    thinking budget, which the provider bills (and the budget counts) as output."""
    return answer_tokens + int(getattr(engine, "thinking_budget", 0) or 0)


def default_max_tokens(engine: Any, fallback: int) -> int:
    """The output tokens per call the agent's config sets for ``engine`` (``llm.maxTokens``), else ``fallback``."""
    return int(getattr(engine, "max_tokens", None) or fallback)
