"""Which engine an agent gets: its config's ``"llm"`` object over the environment's defaults.

::

    "llm": {"provider": "openai", "model": "qwen2.5:7b", "maxTokens": 2048, "thinking": 0,
            "price": {"input": 0.0, "output": 0.0},
            "planner": {"model": "claude-haiku-4-5", "thinking": 2048}, "synthesis": {"model": "..."}}

``planner`` and ``synthesis`` (the orchestrator's roles) take the same fields and inherit the rest.
The provider is the config's, else ``PODIUM_LLM_PROVIDER``, else Anthropic when ``ANTHROPIC_API_KEY``
is set, the OpenAI-compatible engine when ``OPENAI_BASE_URL`` or ``OPENAI_API_KEY`` is, else none
(offline). Claude's client is imported only when Claude is chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

PROVIDERS = ("anthropic", "openai", "offline")
ROLES = ("planner", "synthesis")
# the orchestrator's planner thinks a little before it plans, where the provider can (Claude)
PLANNER_THINKING = 2048


class LLMConfigError(ValueError):
    """The model settings (environment or agent config) are contradictory or incomplete."""


class PriceConfig(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    provider: Literal["anthropic", "openai", "offline"] | None = Field(
        default=None, description="anthropic, openai (any OpenAI-compatible server) or offline"
    )
    model: str | None = Field(default=None, min_length=1, description="the model name; default PODIUM_MODEL")
    base_url: str | None = Field(
        default=None, alias="baseUrl", pattern=r"^https?://", description="OpenAI-compatible server URL"
    )
    max_tokens: int | None = Field(
        default=None, alias="maxTokens", ge=1, le=1_000_000, description="output tokens per call"
    )
    thinking: int | None = Field(
        default=None, ge=0, le=1_000_000, description="extended-thinking tokens per call (Claude); 0 for none"
    )
    price: PriceConfig | None = Field(default=None, description="overrides the price table for this model")


class RoleConfig(_Fields):
    """One orchestrator role's model settings; unset fields inherit the agent's."""


class LlmConfig(_Fields):
    """An agent's model settings (``"llm"`` in its config)."""

    planner: RoleConfig | None = None
    synthesis: RoleConfig | None = None

    def for_role(self, role: str | None) -> _Fields:
        """These settings with ``role``'s over them (the planner thinks :data:`PLANNER_THINKING` unless set)."""
        if role is None:
            return self
        if role not in ROLES:
            raise ValueError(f"unknown model role {role!r}; choose from {', '.join(ROLES)}")
        base = self.model_dump(exclude={"planner", "synthesis"}, exclude_none=True)
        if role == "planner" and self.thinking is None:
            base["thinking"] = PLANNER_THINKING
        sub = getattr(self, role)
        over = sub.model_dump(exclude_none=True) if sub is not None else {}
        return _Fields.model_validate(base | over)


def choose_provider(fields: _Fields, env: Mapping[str, str], where: str, warn: bool = True) -> str | None:
    """The provider for ``fields``, or None for offline. Raises ``LLMConfigError`` when
    ``PODIUM_LLM_PROVIDER`` names an unknown provider or one whose key or URL is missing."""
    has_claude = bool(env.get("ANTHROPIC_API_KEY", "").strip())
    has_openai = bool(env.get("OPENAI_BASE_URL", "").strip() or env.get("OPENAI_API_KEY", "").strip())
    has_openai = has_openai or bool(fields.base_url)
    if fields.provider is not None:
        usable = {"anthropic": has_claude, "openai": has_openai, "offline": True}[fields.provider]
        if fields.provider == "offline":
            return None
        if not usable and not warn:
            return None
        if not usable:
            need = (
                "ANTHROPIC_API_KEY" if fields.provider == "anthropic" else "OPENAI_BASE_URL or OPENAI_API_KEY"
            )
            logger.warning("%s: llm.provider is %s but %s is not set; this agent runs offline", where,
                           fields.provider, need)  # fmt: skip
            return None
        return fields.provider
    named = env.get("PODIUM_LLM_PROVIDER", "").strip().lower()
    if named:
        if named not in PROVIDERS:
            raise LLMConfigError(f"PODIUM_LLM_PROVIDER must be one of {', '.join(PROVIDERS)}, not {named!r}")
        if named == "anthropic" and not has_claude:
            raise LLMConfigError(
                "PODIUM_LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY: set it, or unset the provider"
            )
        if named == "openai" and not has_openai:
            raise LLMConfigError(
                "PODIUM_LLM_PROVIDER=openai needs OPENAI_BASE_URL (e.g. http://localhost:11434/v1 for Ollama) "
                "or OPENAI_API_KEY (OpenAI's own API)"
            )
        return None if named == "offline" else named
    if has_claude:
        return "anthropic"
    return "openai" if has_openai else None


def check(llm: LlmConfig | None, env: Mapping[str, str], where: str = "agent config") -> None:
    """Raise ``LLMConfigError`` now for what :func:`build_engine` would refuse later (an unknown or
    incomplete ``PODIUM_LLM_PROVIDER``), without building anything."""
    config = llm or LlmConfig()
    for role in (None, *ROLES):
        choose_provider(config.for_role(role), env, where, warn=False)


def build_engine(
    llm: LlmConfig | None,
    env: Mapping[str, str],
    *,
    role: str | None = None,
    where: str = "agent config",
    **options: Any,
) -> Any:
    """The engine ``llm`` (for ``role``) and ``env`` describe, or None for offline mode.

    ``options`` go to the engine's constructor (``http_client``, ``retry``...). Raises
    ``LLMConfigError`` as :func:`choose_provider` does. The caller owns the engine (``aclose``).
    """
    fields = (llm or LlmConfig()).for_role(role)
    provider = choose_provider(fields, env, where)
    if provider is None:
        return None
    model = fields.model or env.get("PODIUM_MODEL", "").strip() or None
    price = (fields.price.input, fields.price.output) if fields.price else None
    common: dict[str, Any] = {"model": model, "max_tokens": fields.max_tokens, "price": price}
    if provider == "anthropic":
        from podium.agents.llm.anthropic_engine import AnthropicEngine

        return AnthropicEngine(
            api_key=env.get("ANTHROPIC_API_KEY", "").strip(),
            thinking_budget=fields.thinking or 0,
            **common,
            **options,
        )
    from podium.agents.llm.openai_engine import OpenAIEngine

    stream = env.get("PODIUM_LLM_STREAM", "").strip().lower() not in ("0", "false", "no", "off")
    if fields.thinking and role is None:
        logger.info("%s: llm.thinking applies to Claude only; the OpenAI-compatible engine ignores it", where)
    return OpenAIEngine(
        base_url=fields.base_url or env.get("OPENAI_BASE_URL", "").strip() or None,
        api_key=env.get("OPENAI_API_KEY", "").strip(),
        stream=stream,
        **common,
        **options,
    )


class RoleEngines:
    """The engines of an agent's roles, built on first use from its ``llm`` config and closed with
    :meth:`aclose`. A role without settings of its own (and, for the planner, without the default
    thinking budget to apply) shares ``default``."""

    def __init__(
        self, default: Any, llm: LlmConfig | None, env: Mapping[str, str], where: str, **options: Any
    ) -> None:
        self.default, self.llm, self.env, self.where = default, llm or LlmConfig(), env, where
        self.options = options  # for the engines' constructors (``http_client``, ``retry``...)
        self._built: dict[str, Any] = {}

    def for_role(self, role: str) -> Any:
        if role not in self._built:
            own = getattr(self.llm, role, None) is not None
            planner_thinks = role == "planner" and self.llm.thinking is None and self._claude()
            if own or planner_thinks:
                self._built[role] = build_engine(
                    self.llm, self.env, role=role, where=f"{self.where} llm.{role}", **self.options
                )
            else:
                self._built[role] = self.default
        return self._built[role]

    def _claude(self) -> bool:
        return getattr(self.default, "name", None) == "anthropic"

    async def aclose(self) -> None:
        for engine in self._built.values():
            if engine is not None and engine is not self.default:
                await engine.aclose()
