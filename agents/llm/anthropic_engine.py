"""Claude as an :class:`~agents.llm.engine.Engine`, through the Anthropic Messages API.

The SDK's own retries are switched off (``max_retries=0``) so that one :class:`RetryPolicy` decides,
visibly and testably: 408/409/429/5xx/529 and connection errors are retried with backoff and jitter,
honouring ``retry-after-ms`` / ``retry-after``; 400/401/403/404/413/422 fail at once.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, cast

import anthropic
import httpx2
from anthropic.types import Message as AnthropicMessage

from podium.agents.host.tools import ToolSpec
from podium.agents.llm.errors import LLMAuthError, LLMBadRequest, LLMError, LLMRateLimited, LLMUnavailable
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
from podium.agents.llm.prices import Price, cost, price_for
from podium.agents.llm.retry import RetryPolicy, is_retryable_status, retry_after_seconds

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-sonnet-5-5"
MIN_THINKING_TOKENS = 1024  # the Messages API's smallest thinking budget
MIN_ANSWER_TOKENS = 256
ENGINE_NAME = "anthropic"
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


class AnthropicEngine:
    """Claude through ``anthropic.AsyncAnthropic``.

    The key comes from ``api_key`` or ``ANTHROPIC_API_KEY``, the model from ``model``, ``PODIUM_MODEL``
    or :data:`DEFAULT_MODEL`. Pass ``client`` (an ``AsyncAnthropic``) or ``http_client`` (an
    ``httpx2.AsyncClient``, e.g. over ``httpx2.MockTransport``) to control the transport; those stay
    the caller's to close, and :meth:`aclose` closes only what the engine created.

    Raises ``LLMAuthError`` at construction when no ``client`` is given and no key is set.
    """

    name = ENGINE_NAME

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        client: anthropic.AsyncAnthropic | None = None,
        http_client: httpx2.AsyncClient | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 600.0,
        max_tokens: int | None = None,
        thinking_budget: int = 0,
        price: Price | None = None,
    ) -> None:
        self.model = (model or os.environ.get("PODIUM_MODEL", "")).strip() or DEFAULT_MODEL
        self.retry = retry or RetryPolicy()
        self.max_tokens = max_tokens  # the agent's default output tokens per call, when configured
        # extended thinking: tokens a call may think before answering, on top of its answer's; callers
        # add it to max_tokens (agents.llm.engine.turn_tokens), so it counts in budgets and spend
        self.thinking_budget = thinking_budget
        self.price = price
        self._secret: str | None = None
        if client is not None:
            self._client = client
            self._owns_client = False
            return
        key = (api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY", "")).strip()
        if not key:
            raise LLMAuthError(
                "ANTHROPIC_API_KEY is not set: set it to use Claude, or run without an engine (offline mode)"
            )
        self._secret = key  # kept only to scrub it from error texts
        self._client = anthropic.AsyncAnthropic(
            api_key=key, base_url=base_url, http_client=http_client, max_retries=0, timeout=timeout
        )
        self._owns_client = http_client is None

    def __repr__(self) -> str:
        return f"AnthropicEngine(model={self.model!r})"

    async def aclose(self) -> None:
        """Close the SDK client if this engine created it."""
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> AnthropicEngine:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def complete(
        self, *, system: str, messages: list[Message], tools: list[ToolSpec], max_tokens: int
    ) -> Completion:
        """One Messages API call, retried per :attr:`retry`.

        Raises ``LLMAuthError`` (401/403), ``LLMBadRequest`` (other non-retryable statuses, or a tool
        name the API would reject), ``LLMRateLimited`` (429 on every attempt), ``LLMUnavailable``
        (5xx/529/connection errors on every attempt) and ``LLMError`` for any other SDK failure.
        """
        if max_tokens < 1:
            raise LLMBadRequest(f"max_tokens must be at least 1, not {max_tokens}")
        tool_params = [self.tool_param(spec) for spec in tools]
        message_params = [p for p in (self.message_param(m) for m in messages) if p is not None]
        thinking = self.thinking(max_tokens)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._client.messages.create(
                    model=self.model,
                    max_tokens=max_tokens,
                    system=system if system else anthropic.omit,
                    messages=cast(Any, message_params),
                    tools=cast(Any, tool_params) if tool_params else anthropic.omit,
                    thinking=cast(Any, thinking) if thinking else anthropic.omit,
                )
            except anthropic.APIStatusError as exc:
                retry_after = retry_after_seconds(exc.response.headers)
                if not self._should_retry(exc) or self.retry.gives_up(attempt, retry_after):
                    raise self._status_error(exc, attempt, retry_after) from exc
                delay = self.retry.delay(attempt, retry_after)
                reason = f"status {exc.status_code}"
            except anthropic.APIConnectionError as exc:
                if self.retry.gives_up(attempt):
                    raise LLMUnavailable(
                        f"could not reach the Anthropic API after {attempt} attempt(s): "
                        f"{self._scrub(self._cause(exc))}",
                        attempts=attempt,
                    ) from exc
                delay = self.retry.delay(attempt)
                reason = self._scrub(self._cause(exc))
            except anthropic.AnthropicError as exc:
                raise LLMError(f"Anthropic client error: {self._scrub(str(exc))}", attempts=attempt) from exc
            else:
                return self.completion(response)
            logger.warning(
                "Anthropic call failed (%s); retrying in %.2fs (attempt %d of %d)",
                reason,
                delay,
                attempt + 1,
                self.retry.max_attempts,
            )
            await self.retry.sleep(delay)

    def thinking(self, max_tokens: int) -> dict[str, Any] | None:
        """The ``thinking`` parameter for a call of ``max_tokens``: the configured budget, cut so the
        answer keeps :data:`MIN_ANSWER_TOKENS`; none when less than the API's minimum would be left."""
        budget = min(self.thinking_budget, max_tokens - MIN_ANSWER_TOKENS)
        if self.thinking_budget <= 0 or budget < MIN_THINKING_TOKENS:
            return None
        return {"type": "enabled", "budget_tokens": budget}

    # -- conversions -----------------------------------------------------------------------------

    def tool_param(self, spec: ToolSpec) -> dict[str, Any]:
        """A ToolSpec as an Anthropic tool definition. Raises ``LLMBadRequest`` for a name the API rejects."""
        if not _TOOL_NAME.match(spec.name):
            raise LLMBadRequest(
                f"tool name {spec.name!r} is not valid for Anthropic (letters, digits, '_' and '-', at most 128)"
            )
        schema = dict(spec.input_schema or {})
        schema.setdefault("type", "object")
        param: dict[str, Any] = {"name": spec.name, "input_schema": schema}
        if spec.description:
            param["description"] = spec.description
        return param

    def message_param(self, message: Message) -> dict[str, Any] | None:
        """A Message as Messages API content blocks; ``None`` when nothing in it can be sent.

        Empty text is dropped (the API rejects empty text blocks), and opaque blocks are sent only to
        the engine and model that produced them.
        """
        blocks: list[dict[str, Any]] = []
        for block in message.content:
            if isinstance(block, TextBlock):
                if block.text:
                    blocks.append({"type": "text", "text": block.text})
            elif isinstance(block, ToolCall):
                blocks.append(
                    {"type": "tool_use", "id": block.id, "name": block.name, "input": block.arguments}
                )
            elif isinstance(block, ToolResultBlock):
                result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.tool_call_id}
                if block.text:
                    result["content"] = block.text
                if block.is_error:
                    result["is_error"] = True
                blocks.append(result)
            elif block.engine == self.name and block.model == self.model:
                blocks.append(dict(block.data))
        if not blocks:
            return None
        return {"role": message.role, "content": blocks}

    def completion(self, response: AnthropicMessage) -> Completion:
        """A Messages API response as a Completion; blocks other than text and tool_use (thinking,
        server tools) are kept as opaque blocks for the next call."""
        content: list[Block] = []
        for block in response.content:
            if block.type == "text":
                content.append(TextBlock(block.text))
            elif block.type == "tool_use":
                content.append(ToolCall(block.id, block.name, dict(block.input)))
            else:
                content.append(
                    OpaqueBlock(self.name, self.model, block.model_dump(mode="json", exclude_none=True))
                )
        usage = response.usage
        input_tokens = (
            usage.input_tokens
            + (usage.cache_creation_input_tokens or 0)
            + (usage.cache_read_input_tokens or 0)
        )
        price = self.price or price_for(response.model or self.model)
        return Completion(
            text="".join(b.text for b in content if isinstance(b, TextBlock)),
            tool_calls=[b for b in content if isinstance(b, ToolCall)],
            usage=Usage(input_tokens, usage.output_tokens, cost(price, input_tokens, usage.output_tokens)),
            stop_reason=response.stop_reason or "unknown",
            model=response.model,
            engine=self.name,
            content=content,
        )

    # -- errors ----------------------------------------------------------------------------------

    @staticmethod
    def _should_retry(exc: anthropic.APIStatusError) -> bool:
        # the API may say explicitly whether a retry can help
        hint = exc.response.headers.get("x-should-retry")
        if hint in ("true", "false"):
            return hint == "true"
        return is_retryable_status(exc.status_code)

    def _status_error(
        self, exc: anthropic.APIStatusError, attempts: int, retry_after: float | None
    ) -> LLMError:
        status = exc.status_code
        detail = self._scrub(f"{status} {exc.type or 'error'}: {exc.api_message or exc.message}")
        common: dict[str, Any] = {"status": status, "attempts": attempts, "request_id": exc.request_id}
        if status == 401:
            return LLMAuthError(
                f"Anthropic rejected the API key ({detail}): check ANTHROPIC_API_KEY", **common
            )
        if status == 403:
            return LLMAuthError(
                f"Anthropic refused the request ({detail}): check that ANTHROPIC_API_KEY may use model "
                f"{self.model!r}",
                **common,
            )
        if status == 404:
            return LLMBadRequest(
                f"Anthropic could not find what was asked for ({detail}): is PODIUM_MODEL={self.model!r} right?",
                **common,
            )
        if status == 429:
            wait = f"; it asked to wait {retry_after:g}s" if retry_after is not None else ""
            return LLMRateLimited(
                f"Anthropic rate limit ({detail}) after {attempts} attempt(s){wait}",
                retry_after=retry_after,
                **common,
            )
        if is_retryable_status(status):
            what = "overloaded" if status == 529 else "failing"
            return LLMUnavailable(f"Anthropic API {what} ({detail}) after {attempts} attempt(s)", **common)
        return LLMBadRequest(f"Anthropic rejected the request ({detail})", **common)

    @staticmethod
    def _cause(exc: anthropic.APIConnectionError) -> str:
        cause = exc.__cause__
        if isinstance(exc, anthropic.APITimeoutError):
            return "request timed out"
        return f"{type(cause).__name__}: {cause}" if cause is not None else exc.message

    def _scrub(self, text: str) -> str:
        """Never let the key reach a log or an error message."""
        return text.replace(self._secret, "[redacted]") if self._secret else text
