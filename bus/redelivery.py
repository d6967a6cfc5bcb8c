"""What the consumer does with an entry whose handler failed: answer the caller, retry it later (claiming it
back after a backoff, which counts a delivery) or move it to the dead-letter stream. Part of
:class:`bus.consumer.Consumer`, which provides the state these routines use.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Mapping
from typing import Any

import anyio

from podium.bus.backoff import TRANSIENT
from podium.bus.envelope import FIELD, Envelope
from podium.bus.jobs import Job, Slots
from podium.bus.streams import StreamBus, error_reply, field, text

logger = logging.getLogger("podium.bus.consumer")


class Redelivery:
    """The failure paths of the consumer loop (answer, dead-letter, retry); the consumer provides the rest."""

    bus: StreamBus
    agent: str
    consumer: str
    stream: str
    group: str
    retry_backoff_ms: int
    claim_idle_ms: int
    dead_lettered: int
    _stopping: bool
    _intake: Any  # the task group that runs retries
    _slots: Slots
    _active: set[str]
    _retrying: set[str]

    def _dispatch(
        self, entries: list[tuple[Any, Any]], deliveries: Mapping[str, int] | None, spared: int = 0
    ) -> int:
        raise NotImplementedError

    async def _answer(
        self, env: Envelope, code: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        if env.reply_to:
            await self.bus.reply(env.reply_to, error_reply(env, code, message, data, sender=self.agent))

    async def _dead_letter(
        self, job: Job, env: Envelope | None, error: str, attempts: int | None = None
    ) -> None:
        """Answer the caller (never silence), then move the entry to the DLQ and ack it atomically."""
        attempts = job.deliveries if attempts is None else attempts
        if env is not None:
            await self._answer(env, "DEAD_LETTERED", error, {"attempts": attempts})
        raw = field(job.fields, FIELD)
        if raw is None:
            raw = json.dumps({text(k): text(v) for k, v in (job.fields or {}).items()})
        await self.bus.dead_letter(self.agent, job.entry_id, text(raw), error, attempts, self.consumer)
        self._active.discard(job.entry_id)
        self.dead_lettered += 1
        logger.warning(
            "%s: dead-lettered %s after %d attempts: %s", self.consumer, job.entry_id, attempts, error
        )

    def _retry_later(self, job: Job) -> bool:
        try:
            if not self._stopping:
                self._intake.start_soon(self._retry, job)
                self._retrying.add(job.entry_id)
                return True
        except RuntimeError:  # the intake task group already ended: we are shutting down
            pass
        self._active.discard(job.entry_id)  # stays pending; another consumer reclaims it
        return False

    async def _retry(self, job: Job) -> None:
        """After a backoff, XCLAIM the entry back (counting a delivery) and run it again, in the slot the
        failed run left to us."""
        cap = max(self.retry_backoff_ms, self.claim_idle_ms // 2)
        delay_ms = min(cap, self.retry_backoff_ms * 2 ** (job.deliveries - 1)) * random.uniform(0.8, 1.0)
        dispatched = False
        try:
            await anyio.sleep(delay_ms / 1000)
            try:
                if job.spared:
                    dispatched = await self._retry_spared(job, math.floor(delay_ms / 2))
                    return
                async with self.bus.redis.pipeline(transaction=True) as pipe:
                    pipe.xclaim(
                        self.stream, self.group, self.consumer, math.floor(delay_ms / 2), [job.entry_id]
                    )
                    pipe.xpending_range(
                        self.stream, self.group, job.entry_id, job.entry_id, 1, consumername=self.consumer
                    )
                    claimed, pending = await pipe.execute()
                if claimed and claimed[0][1] is not None and pending:
                    deliveries = {job.entry_id: int(pending[0]["times_delivered"])}
                    dispatched = self._dispatch([(job.entry_id, claimed[0][1])], deliveries) == 1
            except TRANSIENT as exc:
                logger.warning(
                    "%s: cannot retry %s now (%s); it stays pending", self.consumer, job.entry_id, exc
                )
        finally:
            self._retrying.discard(job.entry_id)
            if not dispatched:
                self._slots.release()
                self._active.discard(job.entry_id)

    async def _retry_spared(self, job: Job, min_idle_ms: int) -> bool:
        """Claim back an entry whose last run failed for lack of memory and run it again. One XCLAIM (it
        counts a delivery): a transaction is refused while Redis is out of memory, a single XCLAIM is not."""
        claimed = await self.bus.redis.xclaim(
            self.stream, self.group, self.consumer, min_idle_ms, [job.entry_id]
        )
        if not claimed or claimed[0][1] is None:
            return False  # another consumer took it, or it is gone
        return (
            self._dispatch([(job.entry_id, claimed[0][1])], {job.entry_id: job.deliveries + 1}, job.spared)
            == 1
        )
