"""Errors raised by the LLM layer.

::

    LLMError                  every failure of a model call
    ├── LLMAuthError          the key is missing, wrong (401) or not allowed (403): fix ANTHROPIC_API_KEY
    ├── LLMBadRequest         the provider rejected the request itself (400, 404, 413, ...): retrying won't help
    │   └── LLMToolsUnsupported   the model (or the server's set-up) cannot take tool definitions
    └── LLMUnavailable        retryable failures (5xx, 529 overloaded, connection) outlasted the retries
        └── LLMRateLimited    ... and the last one was a 429

Tool failures are never raised: they go back to the model as ``tool_result`` blocks with ``is_error``.
"""

from __future__ import annotations


class LLMError(Exception):
    """Base class for every LLM-layer error. ``status`` is the provider's HTTP status, when there was one."""

    default = "LLM call failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        attempts: int = 1,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message or self.default)
        self.status = status
        self.attempts = attempts
        self.request_id = request_id


class LLMAuthError(LLMError):
    """The API key is missing, invalid or lacks permission. Never retried."""

    default = "LLM authentication failed: check ANTHROPIC_API_KEY or OPENAI_API_KEY"


class LLMBadRequest(LLMError):
    """The provider rejected the request (bad parameters, unknown model, too large). Never retried."""

    default = "LLM request rejected"


class LLMToolsUnsupported(LLMBadRequest):
    """The model cannot take tools. An agent that needs them answers without the model (offline)."""

    default = "the model does not support tool calls"


class LLMUnavailable(LLMError):
    """The provider kept failing with retryable errors until the attempts ran out."""

    default = "LLM provider unavailable"


class LLMRateLimited(LLMUnavailable):
    """Rate limited (429) on every attempt. ``retry_after`` is the provider's last hint, in seconds."""

    default = "LLM rate limit exceeded"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = 429,
        attempts: int = 1,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, attempts=attempts, request_id=request_id)
        self.retry_after = retry_after
