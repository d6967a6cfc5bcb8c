"""The auto-pipeline's own connection: its commands written straight to one socket, its replies parsed by hiredis.

A command through redis-py's asyncio client costs 55-80 µs of CPU here (a pool checkout and release, the
retry wrapper, observability hooks, a timeout around each read, a coroutine per layer), against 28 µs for
writing the packed command to a socket and parsing its reply with hiredis (docs/performance.md). Every
non-blocking command of a process goes through its :class:`bus.autopipeline.AutoPipeline`, so that one
takes a connection of its own from the client's pool and drives it directly: redis-py makes and
authenticates the connection (TLS, AUTH, SELECT, CLIENT SETNAME: its handshake, unchanged), then a
:class:`Lane` becomes the socket's protocol. A batch is written in one ``write``; each reply, parsed as it
arrives, is handed to its caller through redis-py's own response callback for the command and its own
error classes, so a caller cannot tell the two paths apart.

Failures keep redis-py's rules as :func:`bus.connection.connect` configures them: a batch whose connection
fails before all its replies came is sent once more, on a fresh connection, from its first unanswered
command (redis-py retries such a command once); when that fails too, or no connection can be made, the
callers get redis-py's ``ConnectionError``. With ``socket_timeout`` set, a batch unanswered for that long
fails with redis-py's ``TimeoutError``. ``client.aclose()`` closes the lane's connection with the pool's.

Used only where it can keep all of that: a plain ``redis.asyncio.Redis`` speaking RESP2 with hiredis
installed (not switched off); the cluster client, RESP3, the pure-Python path and ``PODIUM_NO_LANE=1`` keep
redis-py's own.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from redis.asyncio import Redis
from redis.commands.core import AsyncCoreCommands
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from podium.bus.speedups import lane_enabled

logger = logging.getLogger(__name__)

EMPTY_RESPONSE = "EMPTY_RESPONSE"  # redis-py's option names (redis.client)
NEVER_DECODE = "NEVER_DECODE"


class Command:
    """One command of a batch: its packed bytes, its caller's future, and how to parse its reply."""

    __slots__ = ("future", "name", "options", "packed", "sent")

    def __init__(
        self, name: Any, packed: bytes, options: dict[str, Any], future: asyncio.Future[Any]
    ) -> None:
        self.name, self.packed, self.options, self.future = name, packed, options, future
        self.sent = 0  # times written to a connection


def usable(redis: Any) -> bool:
    """True when ``redis`` can have a :class:`Lane`: a plain asyncio client on RESP2, hiredis enabled."""
    if type(redis) is not Redis or not lane_enabled() or redis.single_connection_client:
        return False
    kwargs = redis.connection_pool.connection_kwargs
    return str(kwargs.get("protocol") or 2) == "2"


class Lane(asyncio.Protocol):
    """One connection carrying one batch of commands at a time (the auto-pipeline waits for a batch's replies
    before it sends the next). :meth:`send` takes a batch; ``done`` is called once every command in it is
    settled."""

    def __init__(self, redis: Any) -> None:
        import hiredis
        from redis._parsers.base import BaseParser
        from redis.connection import HiredisRespSerializer

        self._redis = redis
        self._pool = redis.connection_pool
        encoder = self._pool.get_encoder()
        self._reader_kwargs: dict[str, Any] = {
            "protocolError": InvalidResponse,
            "replyError": BaseParser.parse_error,
        }
        if encoder.decode_responses:
            self._reader_kwargs.update(encoding=encoder.encoding, errors=encoder.encoding_errors)
        self._decoding = bool(encoder.decode_responses)
        self._hiredis = hiredis
        self._pack = HiredisRespSerializer().pack
        self._timeout: float | None = self._pool.connection_kwargs.get("socket_timeout")
        self._conn: Any = None  # the redis-py connection whose socket this is (kept in the pool as in use)
        self._transport: asyncio.Transport | None = None
        self._original: Any = None  # the socket's protocol before this one (redis-py's stream protocol)
        self._parser: Any = None
        self._batch: list[Command] = []
        self._answered = 0
        self._done: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._opening: asyncio.Task[None] | None = None

    def pack(
        self, args: tuple[Any, ...], options: dict[str, Any], future: asyncio.Future[Any]
    ) -> Command | None:
        """The command to queue, or None when it must take redis-py's own path (a raw reply wanted from a
        decoding client). Raises redis-py's ``DataError`` for arguments it cannot send."""
        if self._decoding and NEVER_DECODE in options:
            return None
        return Command(args[0], b"".join(self._pack(*args)), options, future)

    # -- sending ---------------------------------------------------------------------------------------------

    def send(self, batch: list[Command], done: Callable[[], None]) -> None:
        self._batch, self._answered, self._done = batch, 0, done
        if self._transport is not None and not self._transport.is_closing():
            self._write()
        else:
            self._reopen()

    def _write(self) -> None:
        assert self._transport is not None
        pending = self._batch[self._answered :]
        for command in pending:
            command.sent += 1
        self._transport.write(b"".join(command.packed for command in pending))
        if self._timeout:
            self._timer = asyncio.get_running_loop().call_later(self._timeout, self._timed_out, self._batch)

    def _reopen(self) -> None:
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        try:
            conn = await self._pool.get_connection()
            if conn._reader.at_eof() or conn._writer.transport.is_closing():
                # Redis closed it while it idled in the pool (a restart): a write would vanish unanswered.
                await conn.disconnect()
                await conn.connect()
            transport = conn._writer.transport
            self._conn, self._original, self._transport = conn, transport.get_protocol(), transport
            self._parser = self._hiredis.Reader(**self._reader_kwargs)
            if buffered := bytes(getattr(conn._reader, "_buffer", b"")):
                self._parser.feed(buffered)
            transport.set_protocol(self)
        except Exception as exc:
            self._opening = None  # before the callers hear: the next batch may open again at once
            self._fail_all(exc if isinstance(exc, RedisConnectionError) else RedisConnectionError(str(exc)))
            return
        self._opening = None
        if self._answered < len(self._batch):
            self._write()

    async def close(self) -> None:
        """Give the connection back to the pool, closed; a later batch opens another."""
        conn, self._conn = self._conn, None
        if self._transport is not None:
            self._transport.close()
        await self._release(conn)

    async def _release(self, conn: Any) -> None:
        if conn is None:
            return
        try:
            await conn.disconnect(nowait=True)
            await self._pool.release(conn)
        except Exception:  # the pool may be closing too
            logger.debug("could not give the lane's connection back to the pool", exc_info=True)

    # -- the protocol ----------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        parser.feed(data)
        try:
            while (reply := parser.gets()) is not False:
                self._settle(reply)
        except InvalidResponse as exc:  # the stream is garbled: nothing more on it can be trusted
            logger.warning("Redis sent a malformed reply (%s); reconnecting", exc)
            assert self._transport is not None
            self._transport.abort()

    def _settle(self, reply: Any) -> None:
        if self._answered >= len(self._batch):
            logger.warning("a Redis reply that no command waits for; dropped")
            return
        command = self._batch[self._answered]
        self._answered += 1
        future, options = command.future, command.options
        if not future.done():  # else its caller was cancelled while the command was in flight
            try:
                result = self._parse(command.name, reply, options)
            except Exception as exc:
                future.set_exception(exc)
            else:
                if inspect.isawaitable(result):
                    _keep(asyncio.ensure_future(_chain(result, future)))
                else:
                    future.set_result(result)
        if self._answered == len(self._batch):
            self._finish()

    def _parse(self, name: Any, reply: Any, options: dict[str, Any]) -> Any:
        """``reply`` as redis-py's ``Redis.parse_response`` returns it (``options`` is the command's own: its
        keys are popped, as redis-py pops them)."""
        if isinstance(reply, ResponseError):
            if EMPTY_RESPONSE in options:
                return options[EMPTY_RESPONSE]
            raise reply
        options.pop(EMPTY_RESPONSE, None)
        options.pop(NEVER_DECODE, None)
        options.pop("keys", None)
        callback = self._redis.response_callbacks.get(name)
        return callback(reply, **options) if callback is not None else reply

    def connection_lost(self, exc: Exception | None) -> None:
        if self._original is not None:  # so redis-py's writer sees it closed (its disconnect waits for that)
            self._original.connection_lost(exc)
            self._original = None
        self._transport = None
        if self._conn is not None:  # back to the pool, closed: it must not hold a pool slot for ever
            conn, self._conn = self._conn, None
            _keep(asyncio.get_running_loop().create_task(self._release(conn)))
        if self._answered >= len(self._batch):
            return
        self._cancel_timer()
        if all(command.sent < 2 for command in self._batch[self._answered :]):
            self._reopen()  # redis-py's rule: a command whose connection failed is sent once more
        else:
            reason = f": {exc}" if exc else ""
            self._fail_all(RedisConnectionError(f"Connection to Redis lost{reason}"))

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def _timed_out(self, batch: list[Command]) -> None:
        if batch is not self._batch or self._answered >= len(batch):
            return
        self._timer = None
        if self._transport is not None:  # replies may still come: the stream's order is lost
            self._transport.abort()  # first, so the next batch opens a fresh connection
        self._fail_all(RedisTimeoutError("Timeout reading from socket"))

    def _fail_all(self, exc: Exception | None) -> None:
        """Settle every command still waiting: with ``exc``, or cancelled when it is None."""
        for command in self._batch[self._answered :]:
            if exc is None:
                command.future.cancel()
            elif not command.future.done():
                command.future.set_exception(exc)
        self._answered = len(self._batch)
        self._finish()

    def _finish(self) -> None:
        self._cancel_timer()
        done, self._done, self._batch, self._answered = self._done, None, [], 0
        if done is not None:
            done()

    def drop(self) -> None:
        """Abandon the batch in flight and its connection, as redis-py does with a connection whose command
        was cancelled mid-read: the next batch opens a fresh one."""
        self._fail_all(None)
        if self._transport is not None:
            self._transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# Lost connections on their way back to their pools, and the like.
_background: set[asyncio.Future[Any]] = set()


def _keep(task: asyncio.Future[Any]) -> None:
    """Hold a reference to ``task`` until it is done (the loop keeps only weak ones)."""
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _chain(awaitable: Any, future: asyncio.Future[Any]) -> None:
    try:
        result = await awaitable
    except Exception as exc:
        if not future.done():
            future.set_exception(exc)
    else:
        if not future.done():
            future.set_result(result)


class BlockingReads(AsyncCoreCommands):
    """The redis-py async command API over a :class:`Lane` of its own, for one task's blocking reads
    (``XREAD BLOCK``, ``XREADGROUP BLOCK``): one command at a time, each answered as soon as its reply is read.
    A read cancelled while blocked abandons its connection, as redis-py's does. Use :func:`blocking_reads`."""

    _is_async_client: Literal[True] = True
    _event_dispatcher: Any = None  # part of redis-py's command protocol; unused by the commands sent here

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._lane: Lane | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._busy = False

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._lane, self._busy = loop, Lane(self.redis), False
        assert self._lane is not None
        if self._busy:
            raise RuntimeError("BlockingReads serves one task at a time")
        future: asyncio.Future[Any] = loop.create_future()
        command = self._lane.pack(args, options, future)
        if command is None:
            return await self.redis.execute_command(*args, **options)
        self._busy = True
        self._lane.send([command], self._idle)
        try:
            return await future
        except asyncio.CancelledError:
            if not future.done() or future.cancelled():
                self._lane.drop()
            raise

    def _idle(self) -> None:
        self._busy = False

    async def aclose(self) -> None:
        """Give the connection back to its pool (closed); call when the reading task ends."""
        if self._lane is not None:
            await self._lane.close()

    def get_encoder(self) -> Any:
        return self.redis.connection_pool.get_encoder()


def blocking_reads(redis: Any) -> Any:
    """A client for one task's blocking reads: :class:`BlockingReads` where a lane is usable, else ``redis``
    (whose pool gives each blocking read a connection of its own). Prefer :func:`reading`, which gives the
    connection back when the task is done."""
    return BlockingReads(redis) if usable(redis) else redis


@asynccontextmanager
async def reading(redis: Any) -> AsyncIterator[Any]:
    """``async with reading(redis) as reads:`` :func:`blocking_reads` for the block, its connection given back
    to the pool at the end."""
    reads = blocking_reads(redis)
    try:
        yield reads
    finally:
        if isinstance(reads, BlockingReads):
            await reads.aclose()
