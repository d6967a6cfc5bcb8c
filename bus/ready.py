"""Is Redis there? One bounded PING for health checks, and waiting until it answers for start-up.

Both name the failure the way a user can act on it (``ConnectionError: Error 111 connecting to ...``) and
never raise for a Redis that is down: whoever asks decides how long to wait and what to say.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from redis.exceptions import RedisError

from podium.bus.backoff import Backoff

PING_TIMEOUT_S = 2.0


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def ping(redis: Any, within: float = PING_TIMEOUT_S) -> str | None:
    """None when Redis answers PING within ``within`` seconds, else why not (``"ConnectionError: ..."``).

    Bounded, so a health check answers even when Redis sits behind a black hole.
    """
    try:
        with anyio.fail_after(within):
            await redis.ping()
    except TimeoutError:
        return f"no answer to PING within {within:g}s"
    except (RedisError, OSError) as exc:
        return _reason(exc)
    return None


async def wait_for_redis(
    redis: Any, *, on_wait: Callable[[str, float], None], remind_every: float = 10.0
) -> None:
    """Return as soon as Redis answers PING; until then retry with a backoff (capped at 2 s).

    ``on_wait(reason, waited_s)`` is called on the first failure and then every ``remind_every`` seconds,
    so the caller can say what it waits for. Runs until Redis answers or the caller cancels it (its
    start-up deadline, SIGTERM); never raises for a Redis that is down.
    """
    backoff = Backoff(first=0.1, cap=2.0)
    started = anyio.current_time()
    next_reminder = started
    while (reason := await ping(redis)) is not None:
        now = anyio.current_time()
        if now >= next_reminder:
            on_wait(reason, now - started)
            next_reminder = now + remind_every
        await backoff.sleep()
