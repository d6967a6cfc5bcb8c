"""The consumer-group loop: read an agent's inbox, run a handler per entry, ack, reclaim, retry, dead-letter.

Delivery is at-least-once. An entry is acked only after its handler returned (the handler writes its
reply first). A fixed pool of ``concurrency`` workers runs handlers, and the loops never take more entries
than there are free worker slots. Delivery counts come from Redis's pending-entries list, so an entry that
kills whole processes is still capped at ``max_deliveries`` before it lands in the dead-letter stream.

Loops: *read* (XREADGROUP ``>``), *claim* (keeps this consumer's own entries fresh with XCLAIM JUSTID and
XAUTOCLAIMs entries that a dead consumer left idle), *ack* (XACKs finished entries in batches), and a
short-lived *retry* task per failed entry (XCLAIMs it back after a backoff, which counts a delivery).
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bus.envelope import FIELD, Envelope, Kind
from bus.errors import ConfigError, EnvelopeError
from bus.keys import validate_name
from bus.streams import StreamBus, dead_letter_fields, decode_entry, field, stream_entries, text

logger = logging.getLogger(__name__)

# Redis going away: the loops back off and retry (BusyLoadingError is a ConnectionError).
TRANSIENT = (RedisConnectionError, RedisTimeoutError, TimeoutError, ConnectionError)


@dataclass(slots=True)
class Delivery:
    """Where an envelope came from and how many times Redis has delivered it (1 on the first try)."""

    stream: str
    entry_id: str
    deliveries: int
    consumer: str


class Handler(Protocol):
    async def __call__(self, env: Envelope, delivery: Delivery) -> None: ...


@dataclass(slots=True)
class _Job:
    entry_id: str
    fields: Mapping[Any, Any] | None
    deliveries: int


class _JobQueue:
    """Entries waiting for a worker. Only one idle worker is woken at a time, and a worker that takes a
    job while more wait wakes the next: fast handlers then run back to back in one task, without a task
    switch per entry, while handlers that wait on I/O fan out to as many workers as there are jobs."""

    def __init__(self) -> None:
        self._jobs: deque[_Job] = deque()
        self._idle: deque[anyio.Event] = deque()
        self._woken = 0  # workers woken that have not run yet
        self.closed = False

    def put(self, job: _Job) -> None:
        self._jobs.append(job)
        self._wake_one()

    def close(self) -> None:
        """No more jobs: workers finish what is queued, then :meth:`get` returns None."""
        self.closed = True
        while self._idle:
            self._woken += 1
            self._idle.popleft().set()

    def _wake_one(self) -> None:
        if self._jobs and self._idle and not self._woken:
            self._woken += 1
            self._idle.popleft().set()

    async def get(self) -> _Job | None:
        while not self._jobs:
            if self.closed:
                return None
            wake = anyio.Event()
            self._idle.append(wake)
            try:
                await wake.wait()
            finally:
                if wake.is_set():
                    self._woken -= 1
                else:
                    self._idle.remove(wake)
        job = self._jobs.popleft()
        self._wake_one()
        return job


class _Backoff:
    """0.05 s doubling to 5 s, with jitter; reset after a success."""

    def __init__(self, first: float = 0.05, cap: float = 5.0) -> None:
        self.first, self.cap, self.delay = first, cap, first

    def reset(self) -> None:
        self.delay = self.first

    async def sleep(self) -> None:
        await anyio.sleep(self.delay * random.uniform(0.5, 1.0))
        self.delay = min(self.cap, self.delay * 2)


class Consumer:
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
        concurrency: int = 16,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        block_ms: int = 1000,
        batch: int = 32,
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
        self.malformed = self.expired = self.acked = 0
        self._active: set[str] = set()  # entries this consumer holds: running, retrying, or awaiting ack
        self._retrying: set[str] = set()  # the subset of _active waiting for a retry
        self._acks: list[str] = []
        self._started = self._stopping = False
        self._finished: anyio.Event | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Create the group, signal started, and consume until :meth:`stop` (or cancellation)."""
        self._finished, self._workers_done = anyio.Event(), anyio.Event()
        self._ack_wake, self._ack_closing = anyio.Event(), False
        self._slots = anyio.Semaphore(self.concurrency)
        self._queue = _JobQueue()
        try:
            await self._prepare()
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._ack_loop)
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
                self._ack_closing = True
                self._ack_wake.set()
        finally:
            self._workers_done.set()
            if self._acks:  # handlers that finished while we were being cancelled: try to keep their acks
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    await self._flush_acks()
            self._finished.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop reading; let in-flight handlers finish for up to ``grace`` seconds, then cancel the rest
        without acking them, so they stay pending for another consumer. Returns when :meth:`run` ended."""
        self._stopping = True
        if not self._started or self._finished is None:
            return
        self._intake.cancel_scope.cancel()
        with anyio.move_on_after(grace):
            await self._workers_done.wait()
        self._workers.cancel()
        await self._finished.wait()

    async def _prepare(self) -> None:
        backoff = _Backoff()
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

    async def _take_slots(self, wait: bool) -> int:
        """Up to ``batch`` free worker slots; with ``wait``, blocks until at least one is free."""
        taken = 0
        if wait:
            await self._slots.acquire()
            taken = 1
        while taken < self.batch:
            try:
                self._slots.acquire_nowait()
            except anyio.WouldBlock:
                break
            taken += 1
        return taken

    def _release(self, n: int) -> None:
        for _ in range(n):
            self._slots.release()

    def _dispatch(self, entries: list[tuple[Any, Any]], deliveries: Mapping[str, int] | None) -> int:
        sent = 0
        for raw_id, fields in entries:
            entry_id = text(raw_id)
            self._active.add(entry_id)
            count = 1 if deliveries is None else deliveries.get(entry_id, 1)
            self._queue.put(_Job(entry_id, fields, count))
            sent += 1
        return sent

    async def _read_loop(self) -> None:
        backoff = _Backoff()
        notifier, redis = self.bus.notifier, self.bus.redis
        streams = {self.stream: ">"}
        while True:
            taken = await self._take_slots(wait=True)
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

    async def _loop_error(self, loop: str, exc: Exception, backoff: _Backoff) -> None:
        """Top-level error handling shared by the loops: recreate a lost group, back off on outages."""
        if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
            logger.warning(
                "%s: group %s on %s is gone; recreating it", self.consumer, self.group, self.stream
            )
            self.start_id = "0"  # the server lost the group: whatever the stream still holds is unhandled
        elif isinstance(exc, TRANSIENT):
            logger.warning("%s: %s loop: Redis unavailable (%s); backing off", self.consumer, loop, exc)
        else:
            logger.exception("%s: %s loop failed; backing off", self.consumer, loop)
        await backoff.sleep()
        if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
            await self._prepare()

    @property
    def _period(self) -> float:
        return min(10.0, max(0.01, self.claim_idle_ms / 3000))

    async def _claim_loop(self) -> None:
        backoff = _Backoff()
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
        backoff = _Backoff()
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
            # The reader may hold free slots in a blocking read; the semaphore is fair, so we get one
            # when that read returns.
            taken = await self._take_slots(wait=True)
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
        rows = await self.bus.redis.xpending_range(
            self.stream,
            self.group,
            ordered[0],
            ordered[-1],
            len(ids) + len(self._active) + 16,
            consumername=self.consumer,
        )
        return {text(r["message_id"]): int(r["times_delivered"]) for r in rows}

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

    async def _process(self, job: _Job) -> bool:
        """Run one entry; True when it failed and a retry task now owns its slot."""
        env = decode_entry(job.fields)
        if isinstance(env, EnvelopeError):
            self.malformed += 1
            await self._dead_letter(job, None, str(env))
            return False
        if job.deliveries > self.max_deliveries:
            error = f"delivered {job.deliveries} times without being acknowledged (its consumers died)"
            await self._dead_letter(job, env, error, attempts=job.deliveries - 1)
            return False
        if env.expired():
            self.expired += 1
            if env.reply_to:
                message = f"deadline expired before {self.agent} could handle the request"
                await self._answer(env, "DEADLINE_EXPIRED", message)
            self._ack(job.entry_id)
            return False
        env.attempt = job.deliveries
        try:
            await self.handler(env, Delivery(self.stream, job.entry_id, job.deliveries, self.consumer))
        except Exception as exc:  # the handler boundary: its failure goes to a retry or the DLQ
            self.failed += 1
            error = f"{type(exc).__name__}: {exc}"
            if job.deliveries >= self.max_deliveries:
                logger.exception("%s: entry %s failed %d times", self.consumer, job.entry_id, job.deliveries)
                await self._dead_letter(job, env, error)
            else:
                logger.warning("%s: entry %s failed (%s); will retry", self.consumer, job.entry_id, error)
                return self._retry_later(job)
            return False
        self.handled += 1
        self._ack(job.entry_id)
        return False

    async def _answer(
        self, env: Envelope, code: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        """Publish an A2A-style error to the request's ``reply_to`` stream."""
        if not env.reply_to:
            return
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        await self.bus.publish(env.reply_to, env.reply(Kind.ERROR, {"error": error}, sender=self.agent))

    async def _dead_letter(
        self, job: _Job, env: Envelope | None, error: str, attempts: int | None = None
    ) -> None:
        """Answer the caller, then move the entry to the DLQ and ack it in one transaction."""
        attempts = job.deliveries if attempts is None else attempts
        if env is not None and env.reply_to:
            await self._answer(env, "DEAD_LETTERED", error, {"attempts": attempts})
        raw = field(job.fields, FIELD)
        if raw is None:
            raw = json.dumps({text(k): text(v) for k, v in (job.fields or {}).items()})
        entry = dead_letter_fields(text(raw), error, attempts, self.consumer, job.entry_id)
        async with self.bus.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dlq, entry, maxlen=self.bus.maxlen, approximate=True)
            pipe.xack(self.stream, self.group, job.entry_id)
            await pipe.execute()
        self._active.discard(job.entry_id)
        self.dead_lettered += 1
        self.bus.notify(self.dlq)
        logger.warning(
            "%s: dead-lettered %s after %d attempts: %s", self.consumer, job.entry_id, attempts, error
        )

    def _retry_later(self, job: _Job) -> bool:
        try:
            if not self._stopping:
                self._intake.start_soon(self._retry, job)
                self._retrying.add(job.entry_id)
                return True
        except RuntimeError:  # the intake task group already ended: we are shutting down
            pass
        self._active.discard(job.entry_id)  # stays pending; another consumer reclaims it
        return False

    async def _retry(self, job: _Job) -> None:
        """After a backoff, XCLAIM the entry back (counting a delivery) and run it again, in the slot the
        failed run left to us."""
        cap = max(self.retry_backoff_ms, self.claim_idle_ms // 2)
        delay_ms = min(cap, self.retry_backoff_ms * 2 ** (job.deliveries - 1)) * random.uniform(0.8, 1.0)
        dispatched = False
        try:
            await anyio.sleep(delay_ms / 1000)
            try:
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

    # -- acking ----------------------------------------------------------------------------------------

    def _ack(self, entry_id: str) -> None:
        self._acks.append(entry_id)
        self._ack_wake.set()

    async def _flush_acks(self) -> None:
        ids, self._acks = self._acks, []
        try:
            await self.bus.redis.xack(self.stream, self.group, *ids)
        except BaseException:
            self._acks[:0] = ids
            raise
        self.acked += len(ids)
        self._active.difference_update(ids)

    async def _ack_loop(self) -> None:
        backoff = _Backoff()
        while True:
            await self._ack_wake.wait()
            self._ack_wake = anyio.Event()
            if self._acks:
                try:
                    await self._flush_acks()
                    backoff.reset()
                except Exception as exc:
                    # Not acked: the entries stay pending and, if this keeps failing, are redelivered.
                    if self._ack_closing:
                        logger.warning(
                            "%s: %d acks lost at shutdown (%s); entries stay pending",
                            self.consumer,
                            len(self._acks),
                            exc,
                        )
                        self._acks.clear()
                        return
                    await self._loop_error("ack", exc, backoff)
                    self._ack_wake.set()
                    continue
            if self._ack_closing and not self._acks:
                return
