"""Streams primitives over one injected Redis client: publish, read, consumer-group setup, DLQ, trimming.

Nothing here caps an inbox by length: an entry is removed only once every group acknowledged it
(:mod:`bus.retention`), and new work is refused at capacity instead (:mod:`bus.backpressure`).

:class:`StreamBus` is the only place that speaks stream commands for publishing and reading; the
consumer-group read loop lives in :mod:`bus.consumer`. On the embedded bus (fakeredis) blocking reads are
emulated with :mod:`bus.notify`, so every write goes through here to wake readers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import OutOfMemoryError, ResponseError

from podium.bus.autopipeline import coalesced
from podium.bus.envelope import FIELD, Envelope, Kind
from podium.bus.errors import EnvelopeError
from podium.bus.keys import Keys
from podium.bus.notify import StreamNotifier, notifier_for
from podium.bus.text import text

logger = logging.getLogger(__name__)

_DEFAULT: Any = object()  # "use the bus's maxlen"
_FIELD_B = FIELD.encode()
REPLY_TTL_S = 3600  # a reply stream whose caller is gone expires this long after it was (re)created

# KEYS: reply stream. ARGV: field, envelope, ttl. A live caller keeps its stream's expiry fresh; a reply
# to a caller that is gone (its stream expired) must not leave a stream behind that never expires.
_APPEND_REPLY = """
local id = redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
"""
_REPLY = _APPEND_REPLY + "return id\n"
# KEYS: reply stream, inbox. ARGV: field, envelope, ttl, group, entry id. The reply and the ack of the
# request it answers in one script: one command, and the ack still never comes without the reply.
_REPLY_ACK = _APPEND_REPLY + "redis.call('XACK', KEYS[2], ARGV[4], ARGV[5])\nreturn id\n"

Entry = tuple[str, "Envelope | EnvelopeError"]


def field(fields: Mapping[Any, Any] | None, name: str) -> Any:
    """One field of an entry, for clients with or without ``decode_responses``."""
    if not fields:
        return None
    value = fields.get(name.encode())
    return fields.get(name) if value is None else value


def decode_entry(fields: Mapping[Any, Any] | None) -> Envelope | EnvelopeError:
    """The entry's envelope, or the :class:`EnvelopeError` saying why it is not one (never raises)."""
    raw = fields.get(_FIELD_B) if fields else None
    if raw is None:
        raw = field(fields, FIELD)
    if raw is None:
        return EnvelopeError(f"entry has no field {FIELD!r}")
    try:
        return Envelope.decode(raw)
    except EnvelopeError as exc:
        return exc


def stream_entries(reply: Any) -> list[tuple[Any, Any]]:
    """The ``(id, fields)`` list of a one-stream XREAD/XREADGROUP reply, in any of redis-py's shapes."""
    if not reply:
        return []
    if isinstance(reply, dict):
        entries = next(iter(reply.values()))
        if entries and isinstance(entries[0], list):  # RESP3 legacy shape wraps the list once more
            entries = entries[0]
        return list(entries or [])
    return list(reply[0][1] or [])


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of an agent's dead-letter stream."""

    id: str  # entry id in the DLQ stream
    entry_id: str  # the original inbox entry id
    envelope: str  # the original entry's raw text (may be malformed)
    error: str
    attempts: int
    consumer: str
    time: float  # unix seconds when it was dead-lettered

    def decode(self) -> Envelope | None:
        """The original envelope, or None when it was malformed."""
        try:
            return Envelope.decode(self.envelope)
        except EnvelopeError:
            return None


def dead_letter_fields(
    raw: str, error: str, attempts: int, consumer: str, entry_id: str
) -> dict[str, str | int | float]:
    """The fields of a DLQ entry."""
    return {
        FIELD: raw,
        "error": error,
        "attempts": attempts,
        "consumer": consumer,
        "entry": entry_id,
        "time": round(time.time(), 3),
    }


def error_reply(
    env: Envelope, code: str, message: str, data: dict[str, Any] | None = None, *, sender: str = ""
) -> Envelope:
    """The ERROR envelope answering ``env``: payload ``{"error": {"code", "message", "data"?}}``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return env.reply(Kind.ERROR, {"error": error}, sender=sender)


class StreamBus:
    """Publish, read, group setup, DLQ and trimming over one injected ``redis.asyncio`` client.

    ``maxlen`` caps every stream published to (approximate ``MAXLEN ~``); None (the default) keeps
    everything. Never cap an inbox: an entry trimmed while pending or undelivered is a lost request.
    Publishes, replies and acks go through ``writes``, the process's auto-pipeline on that client
    (:mod:`bus.autopipeline`), so concurrent handlers share round trips; blocking reads use ``redis``.
    """

    def __init__(self, redis: Any, keys: Keys, *, maxlen: int | None = None) -> None:
        self.redis = redis
        self.writes = coalesced(redis)
        self.keys = keys
        self.maxlen = maxlen
        self.notifier: StreamNotifier | None = notifier_for(redis)
        self._reply = redis.register_script(_REPLY)
        self._reply_ack = redis.register_script(_REPLY_ACK)
        # On Redis Cluster a reply stream and an inbox live in different slots: one script cannot touch both.
        self._acks_with_replies = not isinstance(redis, RedisCluster)

    def notify(self, stream: str) -> None:
        """Wake embedded-bus readers of ``stream``; call after writing to it other than through this bus."""
        if self.notifier is not None:
            self.notifier.notify(stream)

    async def publish(self, stream: str, env: Envelope, *, maxlen: int | None = _DEFAULT) -> str:
        """Append ``env`` to ``stream`` and return its entry id. Raises ``redis.RedisError`` on failure."""
        limit = self.maxlen if maxlen is _DEFAULT else maxlen
        entry_id = await self.writes.xadd(stream, {FIELD: env.encode()}, maxlen=limit, approximate=True)
        self.notify(stream)
        return text(entry_id)

    async def reply(self, stream: str, env: Envelope, *, ack: Any = None) -> str:
        """Append ``env`` to the caller's reply stream ``stream``, untrimmed (its reader trims what it read),
        giving the stream an expiry if it has none. Raises ``redis.RedisError`` on failure.

        ``ack``, the ``Delivery`` of the request ``env`` answers for the last time, is acked in the same script
        (where one script can reach both streams; not on Redis Cluster) and marked ``acked``."""
        if ack is not None and self._acks_with_replies and ack.group:
            entry_id = await self._reply_ack(
                keys=[stream, ack.stream],
                args=[FIELD, env.encode(), REPLY_TTL_S, ack.group, ack.entry_id],
                client=self.writes,
            )
            ack.acked = True
        else:
            entry_id = await self._reply(
                keys=[stream], args=[FIELD, env.encode(), REPLY_TTL_S], client=self.writes
            )
        self.notify(stream)
        return text(entry_id)

    async def publish_many(self, stream: str, envs: Sequence[Envelope]) -> list[str]:
        """Append every envelope to ``stream`` in one pipelined round trip; returns their entry ids in order.

        Raises ``redis.RedisError`` on failure (some entries may have been written).
        """
        if not envs:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for env in envs:
                pipe.xadd(stream, {FIELD: env.encode()}, maxlen=self.maxlen, approximate=True)
            ids = await pipe.execute()
        self.notify(stream)
        return [text(i) for i in ids]

    async def ensure_group(self, stream: str, group: str, *, start_id: str = "$") -> None:
        """Create consumer group ``group`` on ``stream`` (and the stream), unless it exists.

        ``start_id`` ``"$"`` delivers only entries added later; ``"0"`` also the ones already there.
        Raises ``redis.ResponseError`` for anything but an existing group (``OutOfMemoryError`` when Redis is
        full and the group does not exist yet).
        """
        try:
            await self.redis.xgroup_create(stream, group, id=start_id, mkstream=True)
        except OutOfMemoryError:
            # Refused before Redis looks for the group; a consumer restarting while Redis is full of
            # work must still be able to drain it.
            if not await self._has_group(stream, group):
                raise
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _has_group(self, stream: str, group: str) -> bool:
        try:
            groups = await self.redis.xinfo_groups(stream)
        except ResponseError:  # no such stream
            return False
        return any(text(g.get("name")) == group for g in groups)

    async def read(
        self,
        stream: str,
        last_id: str = "$",
        *,
        count: int = 100,
        block_ms: int | None = 1000,
        client: Any = None,
    ) -> list[Entry]:
        """Entries of ``stream`` after ``last_id`` (plain XREAD, no group), waiting up to ``block_ms`` for some.

        ``block_ms=None`` returns at once; ``0`` waits forever (as Redis does). Returns ``(id, envelope)``
        pairs, where a malformed entry's envelope is the :class:`EnvelopeError` describing it. Pass the last
        id returned to the next call. ``client`` (e.g. from ``bus.lane.reading``) sends the read instead of
        ``redis``. Raises ``redis.RedisError`` on failure.
        """
        if self.notifier is None:
            reply = await (client or self.redis).xread({stream: last_id}, count=count, block=block_ms)
            return [(text(i), decode_entry(f)) for i, f in stream_entries(reply)]
        if last_id == "$":
            last_id = await self.last_id(stream)
        since = self.notifier.version(stream)
        reply = await self.redis.xread({stream: last_id}, count=count)
        if not reply and block_ms is not None:
            await self.notifier.wait(stream, since, block_ms / 1000 if block_ms > 0 else None)
            reply = await self.redis.xread({stream: last_id}, count=count)
        return [(text(i), decode_entry(f)) for i, f in stream_entries(reply)]

    async def last_id(self, stream: str) -> str:
        """The id of the newest entry in ``stream`` (``"0-0"`` when empty or missing).

        Raises ``redis.RedisError`` on failure.
        """
        newest = await self.redis.xrevrange(stream, count=1)
        return text(newest[0][0]) if newest else "0-0"

    async def dlq_list(self, agent: str, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` dead letters of ``agent``. Raises ``redis.RedisError`` on failure."""
        rows = await self.redis.xrange(self.keys.dlq(agent), count=count)
        return [self._dead_letter(i, f) for i, f in rows]

    async def dlq_replay(self, agent: str, ids: Sequence[str] | None = None) -> int:
        """Re-publish dead letters (all, or those ``ids``) to ``agent``'s inbox with ``attempt`` reset.

        Each is added to the inbox and deleted from the DLQ in one transaction. Malformed ones cannot be
        replayed and stay. Returns how many were replayed. Raises ``redis.RedisError`` on failure.
        """
        dlq, inbox = self.keys.dlq(agent), self.keys.inbox(agent)
        if ids is None:
            letters = await self.dlq_list(agent, count=1_000_000)
        else:
            letters = []
            for wanted in ids:
                rows = await self.redis.xrange(dlq, min=wanted, max=wanted, count=1)
                letters += [self._dead_letter(i, f) for i, f in rows]
        replayed = 0
        for letter in letters:
            env = letter.decode()
            if env is None:
                logger.warning("dead letter %s of %s is malformed and cannot be replayed", letter.id, agent)
                continue
            env.attempt = 0
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(inbox, {FIELD: env.encode()})
                pipe.xdel(dlq, letter.id)
                await pipe.execute()
            replayed += 1
        if replayed:
            self.notify(inbox)
        return replayed

    async def dead_letter(
        self, agent: str, entry_id: str, raw: str, error: str, attempts: int, consumer: str
    ) -> str:
        """Move pending entry ``entry_id`` of ``agent``'s inbox to its DLQ and ack it, in one transaction
        (inbox and DLQ share a hash tag). Returns the DLQ entry id. Raises ``redis.RedisError`` on failure,
        in which case the entry stays pending."""
        dlq = self.keys.dlq(agent)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(dlq, dead_letter_fields(raw, error, attempts, consumer, entry_id))
            pipe.xack(self.keys.inbox(agent), agent, entry_id)
            dlq_id, _ = await pipe.execute()
        self.notify(dlq)
        return text(dlq_id)

    async def trim(self, stream: str, maxlen: int) -> int:
        """Trim ``stream`` to exactly its newest ``maxlen`` entries; returns how many were removed.

        Raises ``redis.RedisError`` on failure.
        """
        return int(await self.redis.xtrim(stream, maxlen=maxlen, approximate=False))

    @staticmethod
    def _dead_letter(entry_id: Any, fields: Mapping[Any, Any]) -> DeadLetter:
        def get(name: str, default: str = "") -> str:
            value = field(fields, name)
            return default if value is None else text(value)

        return DeadLetter(
            id=text(entry_id),
            entry_id=get("entry"),
            envelope=get(FIELD),
            error=get("error"),
            attempts=int(get("attempts", "0") or 0),
            consumer=get("consumer"),
            time=float(get("time", "0") or 0),
        )
