"""When and how long to wait before calling a model again: exponential backoff with jitter, bounded
attempts, and the provider's own ``retry-after`` hint when it gives one."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import anyio

# 408 timeout, 409 lock conflict, 429 rate limit, 5xx (529 = Anthropic overloaded)
RETRYABLE_STATUS = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait a response asks for: ``retry-after-ms``, else ``retry-after`` as seconds or an HTTP
    date. ``None`` when absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(float(email.utils.mktime_tz(parsed)) - (now if now is not None else time.time()), 0.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a model call is retried. ``max_attempts`` counts the first call; ``sleep`` and ``rand``
    (``rand`` returns a float in [0, 1)) are injectable so tests run instantly and deterministically.

    A ``retry-after`` hint is honoured as given (not jittered) up to ``max_retry_after``; a longer one
    is not waited out: the call fails at once so the caller can route elsewhere.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.25  # each backoff is shortened by a random fraction up to this
    max_retry_after: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=anyio.sleep, compare=False)
    rand: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"RetryPolicy.jitter must be within [0, 1], not {self.jitter}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return retry_after
        backoff = min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)
        return backoff * (1.0 - self.jitter * self.rand())

    def gives_up(self, attempt: int, retry_after: float | None = None) -> bool:
        """Whether failed attempt ``attempt`` is the last: attempts used up, or the provider asks for a
        longer wait than ``max_retry_after``."""
        return attempt >= self.max_attempts or (
            retry_after is not None and retry_after > self.max_retry_after
        )


NO_RETRY = RetryPolicy(max_attempts=1)
