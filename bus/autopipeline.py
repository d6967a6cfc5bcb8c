"""Auto-pipelining: commands that one process issues to Redis concurrently go out together.

Commands issued through an :class:`AutoPipeline` are queued, and the queue is sent as one pipeline
(``transaction=False``); each caller gets its own reply or its own error, as if it had called Redis alone.
While a pipeline is in flight, new commands wait and go out together in the next one as soon as it returns
(ioredis's rule), so under load a round trip carries many callers' commands and one caller's commands reach
Redis in the order it issued them. On a lane (:mod:`bus.lane`, the default with hiredis) the pipeline
goes out on a connection of the auto-pipeline's own, an idle lane writes a command at once, and each reply
reaches its caller as soon as it is read; on redis-py's own path the queue goes out at the end of the
event-loop turn and the replies when the whole pipeline is back.

Cancellation: a caller cancelled while its command is still queued takes the command out (it is never
sent); one cancelled while its command is in flight stops waiting, and the command runs anyway, as a
direct call whose request already left would. Neither disturbs the other callers.

On Redis Cluster the pipeline is redis-py's ``ClusterPipeline``, which splits it into one pipeline per node
by slot and follows MOVED/ASK per command, so slot rules hold; commands that do not name one slot (script
loading goes to every node) bypass the queue. Blocking commands (``XREAD BLOCK``) must never go through
here: they would hold every caller behind them (a blocking reader takes ``bus.lane.reading``). The
embedded bus needs none of this (no network), so :func:`coalesced` returns its client unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Literal

from redis.commands.core import AsyncCoreCommands
from redis.exceptions import ConnectionError as RedisConnectionError

from podium.bus import lane as lanes
from podium.bus.connection import is_embedded

logger = logging.getLogger(__name__)

_Queued = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class AutoPipeline(AsyncCoreCommands):
    """The redis-py async command API over one client, coalescing concurrent commands into pipelines.

    Use :func:`coalesced` to get the one instance per client, so every part of a process shares it.
    """

    _is_async_client: Literal[True] = True
    _event_dispatcher: Any = None  # part of redis-py's command protocol; unused by the commands sent here

    def __init__(self, redis: Any, *, lane: bool = True) -> None:
        """``lane=False`` keeps redis-py's command path even where a lane is usable (for tests)."""
        self.redis = redis
        self.pipelines = 0  # pipelines (or lone commands) sent, for tests and benchmarks
        self.commands = 0  # commands sent
        self._queue: list[Any] = []  # _Queued, or lane.Command on a lane
        self._scheduled = False
        self._sending: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._usable_lane = lane and lanes.usable(redis)
        self._lane: lanes.Lane | None = None  # its own connection (bus.lane), made on the loop that uses it
        self._lane_busy = False  # a batch on the lane awaits its replies
        self._loading: dict[Any, asyncio.Future[Any]] = {}  # script loads in flight, by script

    def execute_command(self, *args: Any, **options: Any) -> Awaitable[Any]:
        """Queue one command; the returned future resolves to its parsed reply or raises its error."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a client serves one loop at a time; start afresh on a new one
            self._loop, self._queue, self._scheduled, self._sending = loop, [], False, None
            self._lane, self._lane_busy = (lanes.Lane(self.redis) if self._usable_lane else None), False
        future: asyncio.Future[Any] = loop.create_future()
        if self._lane is not None:
            command = self._lane.pack(args, options, future)
            if command is None:  # a raw reply from a decoding client: redis-py's own path
                return self.redis.execute_command(*args, **options)  # type: ignore[no-any-return]
            self._queue.append(command)
        else:
            self._queue.append((args, options, future))
        if not self._scheduled and not self.in_flight:
            if self._lane is not None and not _being_cancelled():
                self._flush()  # an idle lane writes at once; what comes while it is out waits
            else:  # at the turn's end (a caller being cancelled is gone by then: its command is never sent)
                self._scheduled = True
                loop.call_soon(self._flush)
        return future

    def script_load(self, script: Any) -> Awaitable[Any]:  # type: ignore[override]
        """Load ``script`` once however many callers ask at a time (all that met NOSCRIPT in one pipeline,
        say, after a Redis restart): one load, not one per caller and a pool connection each."""
        loading = self._loading.get(script)
        if loading is None or loading.get_loop() is not asyncio.get_running_loop():
            if self._usable_lane:  # one Redis: the load shares the lane like any command
                loading = asyncio.ensure_future(self.execute_command("SCRIPT LOAD", script))
            else:  # SCRIPT LOAD goes to every node of a cluster: no single pipeline can carry it
                loading = asyncio.ensure_future(self.redis.script_load(script))
            self._loading[script] = loading
            loading.add_done_callback(
                lambda done: self._loading.pop(script, None) if self._loading.get(script) is done else None
            )
        return asyncio.shield(loading)  # a caller cancelled while waiting leaves the load to the others

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        """A pipeline of the underlying client, for callers that batch explicitly (or need MULTI)."""
        return self.redis.pipeline(transaction=transaction, shard_hint=shard_hint)

    def get_encoder(self) -> Any:
        pool = getattr(self.redis, "connection_pool", None)
        return pool.get_encoder() if pool is not None else self.redis.get_encoder()

    @property
    def queued(self) -> int:
        """Commands queued and not yet sent."""
        return len(self._queue)

    @property
    def in_flight(self) -> bool:
        return self._sending is not None or self._lane_busy

    def _flush(self) -> None:
        self._scheduled = False
        if self.in_flight:  # the batch in flight flushes again when its replies are in
            return
        if self._lane is not None:
            commands = [command for command in self._queue if not command.future.done()]
            self._queue = []
            if commands:
                self.pipelines += 1
                self.commands += len(commands)
                self._lane_busy = True
                self._lane.send(commands, self._lane_done)
            return
        batch = [queued for queued in self._queue if not queued[2].done()]  # drop cancelled callers
        self._queue = []
        if not batch:
            return
        assert self._loop is not None
        self._sending = self._loop.create_task(self._send(batch))

    def _lane_done(self) -> None:
        self._lane_busy = False
        if self._queue and not self._scheduled:
            self._flush()

    async def _send(self, batch: list[_Queued]) -> None:
        self.pipelines += 1
        self.commands += len(batch)
        try:
            if len(batch) == 1:
                args, options, future = batch[0]
                try:
                    result = await self.redis.execute_command(*args, **options)
                except Exception as exc:
                    _settle(future, exc)
                    await self._after_connection_error(exc)
                else:
                    _settle(future, result)
                return
            pipe = self.redis.pipeline(transaction=False)
            for args, options, _ in batch:
                pipe.execute_command(*args, **options)
            try:
                results = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # the connection failed: every caller in this pipeline gets the error
                for _, _, future in batch:
                    _settle(future, exc)
                await self._after_connection_error(exc)
                return
            for (_, _, future), result in zip(batch, results, strict=True):
                _settle(future, result)
        except asyncio.CancelledError:  # the loop is shutting down
            for _, _, future in batch:
                future.cancel()
            raise
        finally:
            self._sending = None
            if self._queue and not self._scheduled and self._loop is not None and not self._loop.is_closed():
                self._scheduled = True
                self._loop.call_soon(self._flush)

    async def _after_connection_error(self, exc: Exception) -> None:
        """A connection failed: Redis probably restarted, so every idle pooled connection is stale too.
        Drop them, or each would fail one more pipeline after Redis is back."""
        pool = getattr(self.redis, "connection_pool", None)  # a cluster client manages its nodes itself
        if pool is not None and isinstance(exc, RedisConnectionError):
            await pool.disconnect(inuse_connections=False)


def _being_cancelled() -> bool:
    """True when the calling task has a cancellation pending (e.g. inside a cancelled anyio scope, which
    cancels it again at each ``await``): its command must not leave before that ``await`` raises."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if future.done():  # its caller was cancelled while the command was in flight
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


_ATTR = "_podium_autopipeline"


def coalesced(redis: Any) -> Any:
    """The :class:`AutoPipeline` every part of this process shares for ``redis`` (the embedded bus: ``redis``
    itself). Pass it where non-blocking commands are issued; keep blocking reads on ``redis``."""
    if isinstance(redis, AutoPipeline) or is_embedded(redis):
        return redis
    pipeline = getattr(redis, _ATTR, None)
    if pipeline is None:  # kept on the client, so the two are collected together
        pipeline = AutoPipeline(redis)
        setattr(redis, _ATTR, pipeline)
    return pipeline
