"""Any OpenAI-compatible server as an :class:`~agents.llm.engine.Engine`, through Chat Completions.

OpenAI, Ollama (``http://localhost:11434/v1``), vLLM, llama.cpp's server, LM Studio and OpenRouter all
speak ``POST {base}/chat/completions`` with ``tools``/``tool_calls``. This is a thin client over
``httpx``, which every agent process has loaded already: the ``openai`` package would add its own
import weight to each agent for no behaviour Podium uses (``podium bench footprint --engines``).

Replies are streamed (SSE, ``stream_options.include_usage``) unless ``stream=False``. One
:class:`RetryPolicy` retries 408/409/429/5xx and connection errors, honouring ``retry-after``; a
rejected key, an unknown model and a model without tool support fail at once, each in one line.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import replace
from typing import Any

import httpx

from podium.agents.host.tools import ToolSpec
from podium.agents.llm.errors import (
    LLMAuthError,
    LLMBadRequest,
    LLMError,
    LLMRateLimited,
    LLMToolsUnsupported,
    LLMUnavailable,
)
from podium.agents.llm.messages import Completion, Message, TextBlock, ToolCall, ToolResultBlock, Usage
from podium.agents.llm.prices import cost, price_for
from podium.agents.llm.retry import RetryPolicy, is_retryable_status, retry_after_seconds
from podium.agents.llm.wire import SSEToolCalls, estimate_usage, iter_sse_data

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4.1-mini"
ENGINE_NAME = "openai"
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# what servers answer for a model (or a server set-up) that cannot take ``tools``
_NO_TOOLS = re.compile(
    r"does not support tools|tools? (?:is|are) not supported|not support(?:ed)? (?:function|tool)"
    r"|enable-auto-tool-choice|tool[_ ]choice.*not supported|function calling is not",
    re.IGNORECASE,
)
# Chat Completions' finish reasons in the Messages API's words, which the rest of Podium uses
_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use", "length": "max_tokens",
         "content_filter": "refusal"}  # fmt: skip


class OpenAIEngine:
    """A Chat Completions model at ``base_url`` (``OPENAI_BASE_URL``, default OpenAI's own).

    ``api_key`` (``OPENAI_API_KEY``) is optional: local servers need none. Pass ``http_client`` (an
    ``httpx.AsyncClient``, e.g. over ``httpx.MockTransport``) to control the transport; it stays the
    caller's to close. ``price`` is USD per million (input, output) tokens for :attr:`Usage.cost`.
    """

    name = ENGINE_NAME

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 600.0,
        stream: bool = True,
        max_tokens: int | None = None,
        price: tuple[float, float] | None = None,
    ) -> None:
        env_base = os.environ.get("OPENAI_BASE_URL", "")
        self.base_url = (base_url or env_base).strip().rstrip("/") or DEFAULT_BASE_URL
        self.model = (model or os.environ.get("PODIUM_MODEL", "")).strip() or DEFAULT_MODEL
        self.retry = retry or RetryPolicy()
        self.stream = stream
        self.max_tokens = max_tokens
        self.thinking_budget = 0
        self.price = price
        self.tools_supported: bool | None = None  # None: not known yet; False once the server said so
        key = (api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")).strip()
        self._secret = key or None  # kept only to scrub it from error texts
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        self._headers = headers
        # made on the first call: an idle agent holds no client (its TLS context alone is megabytes)
        self._client: httpx.AsyncClient | None = http_client
        self._timeout = timeout
        self._owns_client = http_client is None

    def __repr__(self) -> str:  # never the key
        return f"OpenAIEngine(base_url={self.base_url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this engine created it."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> OpenAIEngine:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def complete(
        self, *, system: str, messages: list[Message], tools: list[ToolSpec], max_tokens: int
    ) -> Completion:
        """One Chat Completions call, retried per :attr:`retry`.

        Raises ``LLMAuthError`` (401/403), ``LLMToolsUnsupported`` (the model cannot take tools),
        ``LLMBadRequest`` (404 unknown model, other rejections, a tool name the API would reject),
        ``LLMRateLimited`` (429 on every attempt), ``LLMUnavailable`` (5xx or no connection on every
        attempt) and ``LLMError`` for a reply that is not Chat Completions.
        """
        if max_tokens < 1:
            raise LLMBadRequest(f"max_tokens must be at least 1, not {max_tokens}")
        if tools and self.tools_supported is False:
            raise LLMToolsUnsupported(self._no_tools_text("it said so earlier"))
        payload = self.payload(system, messages, tools, max_tokens)
        attempt = 0
        while True:
            attempt += 1
            try:
                completion = await self._call(payload, attempt)
            except _Retryable as exc:
                if self.retry.gives_up(attempt, exc.retry_after):
                    raise exc.error(attempt) from exc
                delay = self.retry.delay(attempt, exc.retry_after)
                logger.warning(
                    "OpenAI-compatible call failed (%s); retrying in %.2fs (attempt %d of %d)",
                    exc.reason,
                    delay,
                    attempt + 1,
                    self.retry.max_attempts,
                )
                await self.retry.sleep(delay)
                continue
            if tools:
                self.tools_supported = True
            if completion.usage.total == 0:
                completion = estimate_usage(completion, payload)
            return self.priced(completion)

    # -- the request -----------------------------------------------------------------------------

    def payload(
        self, system: str, messages: list[Message], tools: list[ToolSpec], max_tokens: int
    ) -> dict[str, Any]:
        """The request body. OpenAI's own API wants ``max_completion_tokens`` (its reasoning models
        refuse ``max_tokens``); other servers know ``max_tokens``."""
        wire: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        for message in messages:
            wire += self.message_params(message)
        body: dict[str, Any] = {"model": self.model, "messages": wire}
        limit = "max_completion_tokens" if "api.openai.com" in self.base_url else "max_tokens"
        body[limit] = max_tokens
        if tools:
            body["tools"] = [self.tool_param(spec) for spec in tools]
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def tool_param(self, spec: ToolSpec) -> dict[str, Any]:
        """A ToolSpec as a Chat Completions function tool. Raises ``LLMBadRequest`` for a name the API rejects."""
        if not _TOOL_NAME.match(spec.name):
            raise LLMBadRequest(
                f"tool name {spec.name!r} is not valid for Chat Completions (letters, digits, '_' and '-', at most 64)"
            )
        schema = dict(spec.input_schema or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        function: dict[str, Any] = {"name": spec.name, "parameters": schema}
        if spec.description:
            function["description"] = spec.description
        return {"type": "function", "function": function}

    @staticmethod
    def message_params(message: Message) -> list[dict[str, Any]]:
        """A Message as Chat Completions messages: tool results become ``tool`` messages (an error
        flagged in its text, the API has no field for it); opaque blocks of other engines are dropped."""
        if message.role == "assistant":
            calls = [
                {"id": b.id, "type": "function",
                 "function": {"name": b.name, "arguments": json.dumps(b.arguments, ensure_ascii=False)}}
                for b in message.content if isinstance(b, ToolCall)
            ]  # fmt: skip
            text = message.text
            if not calls and not text:
                return []
            out: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                out["tool_calls"] = calls
            return [out]
        params: list[dict[str, Any]] = []
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                content = f"Error: {block.text}" if block.is_error else block.text
                params.append({"role": "tool", "tool_call_id": block.tool_call_id, "content": content})
        text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
        if text or not params:
            params.append({"role": "user", "content": text})
        return params

    # -- the call --------------------------------------------------------------------------------

    async def _call(self, payload: dict[str, Any], attempt: int) -> Completion:
        url = f"{self.base_url}/chat/completions"
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout, connect=10.0))
        try:
            async with self._client.stream("POST", url, json=payload, headers=self._headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._raise_status(response, attempt, bool(payload.get("tools")))
                if payload.get("stream"):
                    return await self._read_stream(response)
                await response.aread()
                return self.completion(self._json(response))
        except httpx.TimeoutException as exc:
            raise _Retryable("request timed out", self._unreachable("the request timed out")) from exc
        except (httpx.TransportError, httpx.StreamError) as exc:
            cause = self._scrub(f"{type(exc).__name__}: {exc}")
            raise _Retryable(cause, self._unreachable(cause)) from exc

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise LLMError(f"{self.base_url} answered with something that is not JSON: is it an OpenAI-"
                           "compatible server (OPENAI_BASE_URL usually ends in /v1)?") from exc  # fmt: skip
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
            raise LLMError(f"{self.base_url} did not answer in the Chat Completions format (no choices)")
        return body

    async def _read_stream(self, response: httpx.Response) -> Completion:
        calls = SSEToolCalls()
        text: list[str] = []
        finish = "unknown"
        model = self.model
        usage = Usage()
        async for data in iter_sse_data(response):
            if "error" in data:
                detail = self._scrub(_error_detail(data))
                raise LLMError(f"the OpenAI-compatible server failed mid-reply: {detail}")
            model = str(data.get("model") or model)
            if isinstance(data.get("usage"), dict):
                usage = self._usage(data["usage"])
            for choice in data.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    text.append(str(delta["content"]))
                calls.add(delta.get("tool_calls") or [])
                finish = choice.get("finish_reason") or finish
        return self._completion("".join(text), calls.done(), finish, model, usage)

    def completion(self, body: dict[str, Any]) -> Completion:
        """A non-streamed Chat Completions response as a Completion."""
        choices = body.get("choices") or [{}]
        message = choices[0].get("message") or {}
        raw_calls = [
            (c.get("id") or f"call_{i}", (c.get("function") or {}).get("name", ""),
             (c.get("function") or {}).get("arguments") or "")
            for i, c in enumerate(message.get("tool_calls") or [])
        ]  # fmt: skip
        usage = self._usage(body["usage"]) if isinstance(body.get("usage"), dict) else Usage()
        finish = choices[0].get("finish_reason") or "unknown"
        model = str(body.get("model") or self.model)
        return self._completion(str(message.get("content") or ""), raw_calls, finish, model, usage)

    def _completion(
        self, text: str, raw_calls: list[tuple[str, str, Any]], finish: str, model: str, usage: Usage
    ) -> Completion:
        calls = [ToolCall(id, name, _arguments(args)) for id, name, args in raw_calls if name]
        content: list[Any] = ([TextBlock(text)] if text else []) + calls
        stop = _STOP.get(finish, finish)
        if calls and stop == "end_turn":
            stop = "tool_use"  # some servers say "stop" for a turn with tool calls
        return Completion(text, calls, usage, stop, model, self.name, content)

    def _usage(self, raw: dict[str, Any]) -> Usage:
        tokens_in, tokens_out = int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0)
        return Usage(tokens_in, tokens_out)

    def priced(self, completion: Completion) -> Completion:
        """``completion`` with the cost of its usage at :attr:`price` (or the table's price)."""
        price = self.price or price_for(completion.model or self.model, self.base_url)
        usage = completion.usage
        return replace(
            completion, usage=Usage(usage.input_tokens, usage.output_tokens, cost(price, *_tokens(usage)))
        )

    # -- errors ----------------------------------------------------------------------------------

    def _raise_status(self, response: httpx.Response, attempt: int, with_tools: bool) -> None:
        status = response.status_code
        try:
            detail = _error_detail(response.json())
        except ValueError:
            detail = response.text[:300].strip() or response.reason_phrase
        detail = self._scrub(f"{status}: {detail}")
        common: dict[str, Any] = {"status": status, "attempts": attempt,
                                  "request_id": response.headers.get("x-request-id")}  # fmt: skip
        where = f"the OpenAI-compatible server at {self.base_url}"
        if status in (401, 403):
            verb = "rejected the API key" if status == 401 else "refused the request"
            raise LLMAuthError(f"{where} {verb} ({detail}): check OPENAI_API_KEY", **common)
        if status == 404:
            raise LLMBadRequest(
                f"{where} has no model {self.model!r} ({detail}): check PODIUM_MODEL (for Ollama, "
                "`ollama pull` it) and that OPENAI_BASE_URL ends in /v1",
                **common,
            )
        if with_tools and status in (400, 422, 500) and _NO_TOOLS.search(detail):
            self.tools_supported = False
            raise LLMToolsUnsupported(self._no_tools_text(detail), **common)
        if is_retryable_status(status):
            retry_after = retry_after_seconds(response.headers)
            error: LLMUnavailable
            if status == 429:
                wait = f"; it asked to wait {retry_after:g}s" if retry_after is not None else ""
                error = LLMRateLimited(
                    f"{where} rate limit ({detail}){{after}}{wait}", retry_after=retry_after, **common
                )
            else:
                error = LLMUnavailable(f"{where} is failing ({detail}){{after}}", **common)
            raise _Retryable(f"status {status}", error, retry_after)
        raise LLMBadRequest(f"{where} rejected the request ({detail})", **common)

    def _no_tools_text(self, detail: str) -> str:
        return (
            f"model {self.model!r} at {self.base_url} does not support tool calls ({detail}): agents that "
            "need tools answer offline; choose a model with tool support (e.g. llama3.1, qwen2.5) in PODIUM_MODEL"
        )

    def _unreachable(self, cause: str) -> LLMUnavailable:
        return LLMUnavailable(
            f"could not reach the OpenAI-compatible server at {self.base_url}{{after}} ({cause}): is it "
            "running, and is OPENAI_BASE_URL right?"
        )

    def _scrub(self, text: str) -> str:
        """Never let the key reach a log or an error message."""
        return text.replace(self._secret, "[redacted]") if self._secret else text


class _Retryable(Exception):
    """A failure the retry policy may try again; ``error(attempts)`` is what to raise when it won't."""

    def __init__(self, reason: str, error: LLMError, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self._error, self.retry_after = reason, error, retry_after

    def error(self, attempts: int) -> LLMError:
        err = self._error
        text = str(err).replace("{after}", f" after {attempts} attempt(s)")
        kind = type(err)
        extra: dict[str, Any] = {"retry_after": err.retry_after} if isinstance(err, LLMRateLimited) else {}
        return kind(text, status=err.status, attempts=attempts, request_id=err.request_id, **extra)


def _tokens(usage: Usage) -> tuple[int, int]:
    return usage.input_tokens, usage.output_tokens


def _error_detail(body: Any) -> str:
    """The message of an error body: ``{"error": {"message": ...}}``, ``{"error": "..."}`` or ``{"detail": ...}``."""
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            return str(err.get("message") or err.get("code") or err)
        if err is not None:
            return str(err)
    return str(body)[:300]


def _arguments(raw: Any) -> dict[str, Any]:
    """A tool call's arguments (a JSON string on the wire). Unparseable ones reach the tool as they
    are, so its validation error goes back to the model, which can correct itself."""
    if isinstance(raw, dict):
        return raw
    if not str(raw).strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"arguments": str(raw)}
    return value if isinstance(value, dict) else {"arguments": value}
