"""How the bus's loops ride out Redis going away: which errors are transient, and the backoff between tries."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError

T = TypeVar("T")

# Redis restarting, unreachable or still loading its data (BusyLoadingError is a ConnectionError), or
# refusing writes because it reached maxmemory (noeviction) until memory frees.
TRANSIENT = (RedisConnectionError, RedisTimeoutError, TimeoutError, ConnectionError, OutOfMemoryError)


class Backoff:
    """Delays of ``first`` seconds doubling up to ``cap``, each with jitter; :meth:`reset` after a success."""

    def __init__(self, first: float = 0.05, cap: float = 5.0) -> None:
        self.first, self.cap, self.delay = first, cap, first

    def reset(self) -> None:
        self.delay = self.first

    async def sleep(self) -> None:
        await anyio.sleep(self.delay * random.uniform(0.5, 1.0))
        self.delay = min(self.cap, self.delay * 2)


def out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` comes from Redis refusing a write because it reached ``maxmemory`` (noeviction):
    transient, and no fault of the request being handled."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        error = todo.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OutOfMemoryError):
            return True
        if isinstance(error, BaseExceptionGroup):
            todo.extend(error.exceptions)
        todo.extend(e for e in (error.__cause__, error.__context__) if e is not None)
    return False


async def through_outages(call: Callable[[], Awaitable[T]], *, within: float = 30.0) -> T:
    """``await call()``, calling it again while Redis is briefly away (restarting, loading its data) for
    up to ``within`` seconds. Raises the last transient error after that, and any other error at once."""
    deadline = time.monotonic() + within
    backoff = Backoff(first=0.05, cap=2.0)
    while True:
        try:
            return await call()
        except TRANSIENT:
            if time.monotonic() >= deadline:
                raise
            await backoff.sleep()
