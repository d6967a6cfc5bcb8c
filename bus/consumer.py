"""The consumer-group loop: read an agent's inbox, run a handler per entry, ack, reclaim, retry, dead-letter.

Delivery is at-least-once. An entry is acked only after its handler returned (the handler writes its
reply first), or by the handler's final reply itself, in the same script (``Delivery.acked``). A fixed
pool of ``concurrency`` workers runs handlers, and the loops never take more entries than there are free
worker slots. Delivery counts come from Redis's pending-entries list, so an entry that
kills whole processes is still capped at ``max_deliveries`` before it lands in the dead-letter stream. A
handler that failed only because Redis is out of memory is retried with a growing backoff and that
delivery is not held against the entry, so accepted work waits for memory instead of being dead-lettered.

Loops: *read* (XREADGROUP ``>``), *claim* (XAUTOCLAIMs entries a dead consumer left idle), *keepalive*
(XCLAIM JUSTID on the entries we hold, so slow handlers are not taken for dead), *ack* (XACKs finished
entries in batches), and a short-lived *retry* task per failed entry (XCLAIMs it back after a backoff,
which counts a delivery). Every loop rides out Redis outages with a backoff and recreates a lost group.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus
from redis.exceptions import ResponseError

from podium.bus.acks import AckBatcher
from podium.bus.backoff import TRANSIENT, Backoff, out_of_memory
from podium.bus.envelope import FIELD, Envelope
from podium.bus.errors import BusClosed, ConfigError, EnvelopeError
from podium.bus.jobs import Job, JobQueue, Slots
from podium.bus.keys import validate_name
from podium.bus.lane import reading
from podium.bus.redelivery import Redelivery
from podium.bus.streams import StreamBus, decode_entry, field, stream_entries, text

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Delivery:
    """Where an envelope came from and how many times Redis has delivered it (1 on the first try)."""

    stream: str
    entry_id: str
    deliveries: int
    consumer: str
    size: int = 0  # bytes of the envelope as it sat in the stream
    group: str = ""
    acked: bool = False  # set by a handler whose final reply acked the entry with it (StreamBus.reply)


class Handler(Protocol):
    async def __call__(self, env: Envelope, delivery: Delivery, /) -> None: ...


class Consumer(Redelivery):
    """One consumer in agent ``agent``'s group on its inbox, running ``handler`` for each envelope.

    Raises ``ConfigError`` at construction for a bad consumer name or non-positive limits.
    ``start_id`` is where a newly created group starts: ``"0"`` (default) so requests sent before any
    replica ever started are still handled.
    """

    def __init__(
        self,
        bus: StreamBus,
        agent: str,
        handler: Handler,
        *,
        consumer: str,
        concurrency: int = 128,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        block_ms: int = 1000,
        batch: int = 128,
        retry_backoff_ms: int = 200,
        start_id: str = "0",
    ) -> None:
        try:
            validate_name("agent", agent)
            validate_name("consumer", consumer)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        for name, value in (
            ("concurrency", concurrency),
            ("claim_idle_ms", claim_idle_ms),
            ("max_deliveries", max_deliveries),
            ("block_ms", block_ms),
            ("batch", batch),
        ):
            if value < 1:
                raise ConfigError(f"Consumer {name} must be at least 1, got {value}")
        if retry_backoff_ms < 0:
            raise ConfigError(f"Consumer retry_backoff_ms must be >= 0, got {retry_backoff_ms}")
        self.bus, self.agent, self.handler, self.consumer = bus, agent, handler, consumer
        self.concurrency, self.claim_idle_ms, self.max_deliveries = concurrency, claim_idle_ms, max_deliveries
        self.block_ms, self.batch, self.retry_backoff_ms = block_ms, batch, retry_backoff_ms
        self.start_id = start_id
        self.stream, self.group, self.dlq = bus.keys.inbox(agent), agent, bus.keys.dlq(agent)
        # counters, for tests, benchmarks and health
        self.handled = self.failed = self.dead_lettered = self.reclaimed = 0
        self.malformed = self.expired = 0
        self._active: set[str] = set()  # entries this consumer holds: running, retrying, or awaiting ack
        self._retrying: set[str] = set()  # the subset of _active waiting for a retry
        self._acks = AckBatcher(
            bus.writes,
            self.stream,
            self.group,
            on_acked=self._active.difference_update,
            on_error=lambda exc, backoff: self._loop_error("ack", exc, backoff),
        )
        self._started = self._stopping = False
        self._finished: anyio.Event | None = None

    @property
    def acked(self) -> int:
        """How many entries this consumer has acked (handled, expired; dead letters count separately)."""
        return self._acks.acked

    # -- lifecycle -----------------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Create the group, signal started, and consume until :meth:`stop` (or cancellation).

        A consumer runs once: raises ``BusClosed`` when called again. Raises ``redis.ResponseError`` when
        the group cannot be created (e.g. the inbox key holds something else than a stream).
        """
        if self._finished is not None:
            raise BusClosed(f"consumer {self.consumer} already ran; create a new Consumer")
        self._finished, self._workers_done = anyio.Event(), anyio.Event()
        self._setup = anyio.CancelScope()
        acks = self._acks
        self._slots = Slots(self.concurrency)
        self._queue = JobQueue()
        try:
            with self._setup:  # stop() during setup (e.g. while Redis is down) cancels it
                await self._prepare()
            if self._stopping:
                task_status.started()
                return
            async with anyio.create_task_group() as outer:
                outer.start_soon(acks.run)
                async with anyio.create_task_group() as workers:
                    self._workers = workers.cancel_scope
                    for _ in range(self.concurrency):
                        workers.start_soon(self._worker)
                    try:
                        async with anyio.create_task_group() as intake:
                            self._intake = intake
                            self._started = True
                            if not self._stopping:
                                intake.start_soon(self._read_loop)
                                intake.start_soon(self._claim_loop)
                                intake.start_soon(self._keepalive_loop)
                            task_status.started()
                    finally:
                        self._queue.close()
                self._workers_done.set()
                acks.close()
        finally:
            self._workers_done.set()
            if len(acks):  # handlers that finished while we were being cancelled: try to keep their acks
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    try:
                        await acks.flush()
                    except TRANSIENT as exc:
                        logger.warning("%s: final acks failed (%s); entries stay pending", self.consumer, exc)
            self._finished.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop reading; let in-flight handlers finish for up to ``grace`` seconds, then cancel the rest
        without acking them, so they stay pending for another consumer. Returns when :meth:`run` ended."""
        self._stopping = True
        if self._finished is None:  # never ran
            return
        if not self._started:
            self._setup.cancel()
        else:
            self._intake.cancel_scope.cancel()
            with anyio.move_on_after(grace):
                await self._workers_done.wait()
            self._workers.cancel()
        await self._finished.wait()

    async def _prepare(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self.bus.ensure_group(self.stream, self.group, start_id=self.start_id)
                return
            except TRANSIENT as exc:
                logger.warning(
                    "%s: cannot create group on %s (%s); retrying", self.consumer, self.stream, exc
                )
                await backoff.sleep()

    # -- reading ---------------------------------------------------------------------------------------

    async def _take_slots(self) -> int:
        """At least one free worker slot and up to ``batch``, waiting while none is free."""
        return await self._slots.take(self.batch)

    def _release(self, n: int) -> None:
        self._slots.release(n)

    def _dispatch(
        self, entries: list[tuple[Any, Any]], deliveries: Mapping[str, int] | None, spared: int = 0
    ) -> int:
        sent = 0
        for raw_id, fields in entries:
            entry_id = text(raw_id)
            self._active.add(entry_id)
            count = 1 if deliveries is None else deliveries.get(entry_id, 1)
            self._queue.put(Job(entry_id, fields, count, spared))
            sent += 1
        return sent

    async def _read_loop(self) -> None:
        # Its blocking reads on a connection of its own (bus.lane).
        async with reading(self.bus.redis) as reads:
            await self._read_with(reads)

    async def _read_with(self, reads: Any) -> None:
        backoff = Backoff()
        notifier, redis = self.bus.notifier, self.bus.redis
        if notifier is None:
            redis = reads
        streams = {self.stream: ">"}
        while True:
            taken = await self._take_slots()
            sent = 0
            try:
                if notifier is None:
                    reply = await redis.xreadgroup(
                        self.group, self.consumer, streams, count=taken, block=self.block_ms
                    )
                    sent = self._dispatch(stream_entries(reply), None)
                else:
                    since = notifier.version(self.stream)
                    reply = await redis.xreadgroup(self.group, self.consumer, streams, count=taken)
                    sent = self._dispatch(stream_entries(reply), None)
                    if not sent:
                        self._release(taken)
                        taken = 0
                        await notifier.wait(self.stream, since, self.block_ms / 1000)
                backoff.reset()
            except Exception as exc:
                await self._loop_error("read", exc, backoff)
            finally:
                self._release(taken - sent)
            if sent:  # the workers reach their first Redis command before this loop's next read goes out
                await asyncio.sleep(0)

    async def _loop_error(self, loop: str, exc: Exception, backoff: Backoff) -> None:
        """Top-level error handling shared by the loops: recreate a lost group, back off on outages."""
        # NOGROUP: the group is gone (e.g. Redis restarted without persistence); UNBLOCKED: the stream or
        # group was deleted while we were blocked reading it.
        lost = isinstance(exc, ResponseError) and any(m in str(exc) for m in ("NOGROUP", "UNBLOCKED"))
        if lost:
            logger.warning(
                "%s: group %s on %s is gone (%s); recreating it", self.consumer, self.group, self.stream, exc
            )
            self.start_id = "0"  # the server lost the group: whatever the stream still holds is unhandled
        elif isinstance(exc, TRANSIENT):
            logger.warning("%s: %s loop: Redis unavailable (%s); backing off", self.consumer, loop, exc)
        else:
            logger.exception("%s: %s loop failed; backing off", self.consumer, loop)
        await backoff.sleep()
        if lost:
            await self._prepare()

    @property
    def _period(self) -> float:
        return min(10.0, max(0.01, self.claim_idle_ms / 3000))

    async def _claim_loop(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self._reclaim()
                backoff.reset()
            except Exception as exc:
                await self._loop_error("claim", exc, backoff)
            await anyio.sleep(self._period)

    async def _keepalive_loop(self) -> None:
        """Reset the idle time of entries we still hold (XCLAIM JUSTID: no delivery counted), so slow
        handlers are not mistaken for a dead consumer's leftovers."""
        backoff = Backoff()
        while True:
            try:
                # Not entries waiting for a retry: their XCLAIM checks that they stayed idle meanwhile.
                held = self._active - self._retrying
                if held:
                    await self.bus.redis.xclaim(
                        self.stream, self.group, self.consumer, 0, list(held), justid=True
                    )
                backoff.reset()
            except Exception as exc:
                await self._loop_error("keepalive", exc, backoff)
            await anyio.sleep(self._period)

    async def _reclaim(self) -> None:
        """XAUTOCLAIM entries idle longer than ``claim_idle_ms`` and run them, as far as slots allow."""
        redis, cursor = self.bus.redis, "0-0"
        while True:
            if not await redis.xpending_range(self.stream, self.group, "-", "+", 1, idle=self.claim_idle_ms):
                return  # nothing idle: do not hold slots the reader could use
            # The reader may hold free slots in a blocking read; slots go to waiters in turn, so we get one
            # when that read returns.
            taken = await self._take_slots()
            sent = 0
            try:
                reply = await redis.xautoclaim(
                    self.stream, self.group, self.consumer, self.claim_idle_ms, cursor, count=taken
                )
                cursor = text(reply[0])
                claimed = [(text(i), f) for i, f in reply[1] if text(i) not in self._active]
                gone = [i for i, f in claimed if f is None]  # deleted from the stream (Redis 6.2)
                claimed = [(i, f) for i, f in claimed if f is not None]
                if gone:
                    await redis.xack(self.stream, self.group, *gone)
                if claimed:
                    counts = await self._deliveries([i for i, _ in claimed])
                    logger.info(
                        "%s: reclaimed %d idle entries of %s", self.consumer, len(claimed), self.stream
                    )
                    self.reclaimed += len(claimed)
                    sent = self._dispatch(claimed, counts)
            finally:
                self._release(taken - sent)
            if cursor in ("0-0", "0"):
                return

    async def _deliveries(self, ids: list[str]) -> dict[str, int]:
        """Times-delivered of our pending entries ``ids``, from the PEL."""
        ordered = sorted(ids, key=lambda i: tuple(int(p) for p in i.split("-")))
        redis = self.bus.redis
        rows = await redis.xpending_range(
            self.stream, self.group, ordered[0], ordered[-1], len(ids) + len(self._active) + 16, self.consumer
        )
        counts = {text(r["message_id"]): int(r["times_delivered"]) for r in rows}
        for missing in (i for i in ids if i not in counts):  # the range held more of ours than we asked for
            rows = await redis.xpending_range(self.stream, self.group, missing, missing, 1, self.consumer)
            counts[missing] = int(rows[0]["times_delivered"]) if rows else 1
        return counts

    # -- running ---------------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while (job := await self._queue.get()) is not None:
            retrying = False
            try:
                retrying = await self._process(job)
            except Exception:
                # Redis failed while dead-lettering or answering: the entry stays pending and is
                # reclaimed later.
                logger.exception("%s: could not finish entry %s", self.consumer, job.entry_id)
                self._active.discard(job.entry_id)
            finally:
                if not retrying:  # a retry keeps the slot through its backoff
                    self._slots.release()

    async def _process(self, job: Job) -> bool:
        """Run one entry; True when it failed and a retry task now owns its slot."""
        env = decode_entry(job.fields)
        if isinstance(env, EnvelopeError):
            self.malformed += 1
            await self._dead_letter(job, None, str(env))
            return False
        if job.deliveries - job.spared > self.max_deliveries:
            error = f"delivered {job.deliveries} times without being acknowledged (its consumers died)"
            await self._dead_letter(job, env, error, attempts=job.deliveries - 1)
            return False
        if env.expired():
            self.expired += 1
            message = f"deadline expired before {self.agent} could handle the request"
            await self._answer(env, "DEADLINE_EXPIRED", message)
            self._acks.ack(job.entry_id)
            return False
        env.attempt = job.deliveries
        try:
            raw = field(job.fields, FIELD)
            delivery = Delivery(
                self.stream, job.entry_id, job.deliveries, self.consumer, len(raw or b""), self.group
            )
            await self.handler(env, delivery)
        except Exception as exc:  # the handler boundary: its failure goes to a retry or the DLQ
            self.failed += 1
            error = f"{type(exc).__name__}: {exc}"
            if out_of_memory(exc):
                logger.warning(
                    "%s: entry %s: Redis is out of memory; will retry", self.consumer, job.entry_id
                )
                job.spared += 1
                return self._retry_later(job)
            if job.deliveries - job.spared >= self.max_deliveries:
                logger.exception("%s: entry %s failed %d times", self.consumer, job.entry_id, job.deliveries)
                await self._dead_letter(job, env, error)
            else:
                logger.warning("%s: entry %s failed (%s); will retry", self.consumer, job.entry_id, error)
                return self._retry_later(job)
            return False
        self.handled += 1
        if delivery.acked:  # in the same script as its reply
            self._acks.acked_with_reply(job.entry_id)
        else:
            self._acks.ack(job.entry_id)
        return False
