"""Acking in batches: entries whose handlers finished are XACKed together, so one round trip acks all that
finished while the previous XACK was in flight."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from podium.bus.backoff import Backoff

logger = logging.getLogger(__name__)


class AckBatcher:
    """Collects finished entry ids and XACKs them from :meth:`run`. Ids stay pending in Redis (and are
    redelivered) until an XACK succeeds; a failed XACK is retried with a backoff."""

    def __init__(
        self,
        redis: Any,
        stream: str,
        group: str,
        *,
        on_acked: Callable[[list[str]], None],
        on_error: Callable[[Exception, Backoff], Awaitable[None]],
    ) -> None:
        self.redis, self.stream, self.group = redis, stream, group
        self.on_acked, self.on_error = on_acked, on_error
        self.acked = 0
        self._ids: list[str] = []
        self._wake: anyio.Event | None = None  # created by run(), inside the event loop
        self._closing = False

    def __len__(self) -> int:
        return len(self._ids)

    def ack(self, entry_id: str) -> None:
        self._ids.append(entry_id)
        if self._wake is not None:
            self._wake.set()

    def acked_with_reply(self, entry_id: str) -> None:
        """Count ``entry_id`` acked: the handler's reply acked it in the same script."""
        self.acked += 1
        self.on_acked([entry_id])

    def close(self) -> None:
        """Flush what is left, then let :meth:`run` return."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()

    async def flush(self) -> None:
        """XACK everything collected. Raises ``redis.RedisError`` on failure, keeping the ids for later."""
        ids, self._ids = self._ids, []
        if not ids:
            return
        try:
            await self.redis.xack(self.stream, self.group, *ids)
        except BaseException:
            self._ids[:0] = ids
            raise
        self.acked += len(ids)
        self.on_acked(ids)

    async def run(self) -> None:
        backoff = Backoff()
        self._closing = False
        while True:
            if not self._ids and not self._closing:
                self._wake = anyio.Event()
                await self._wake.wait()
            try:
                await self.flush()
                backoff.reset()
            except Exception as exc:
                if self._closing:
                    logger.warning(
                        "%d acks on %s lost at shutdown (%s); the entries stay pending",
                        len(self._ids), self.stream, exc,
                    )  # fmt: skip
                    self._ids.clear()
                    return
                await self.on_error(exc, backoff)
                continue
            if self._closing and not self._ids:
                return
