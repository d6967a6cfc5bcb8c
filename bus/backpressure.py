"""Backpressure: each inbox has a capacity, and a full inbox refuses new work loudly instead of growing.

An inbox's *waiting* work is every entry its consumer group has not acknowledged: entries not yet
delivered plus entries delivered and pending. Its capacity lives in ``{ns}:limits:{agent}`` (written by
the agent's runtime; ``capacity`` 0 means unlimited), next to the inbox under the same hash tag, so one
Lua script compares and appends atomically and the cap holds however many publishers race for the last
slot. A refused publish raises :class:`AgentOverloaded`; so does a publish Redis refuses because it is
out of memory (``maxmemory`` with ``noeviction``). The same error reaches HTTP callers of the agent in the
shapes :func:`jsonrpc_error` and :func:`rest_error` build, and :func:`retry_after` recognises it however
it arrives.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from a2a.client.errors import A2AClientError
from redis.exceptions import OutOfMemoryError

from podium.bus.autopipeline import coalesced
from podium.bus.envelope import FIELD, Envelope
from podium.bus.keys import Keys
from podium.bus.notify import notifier_for
from podium.bus.text import text

DEFAULT_CAPACITY = 1000
DEFAULT_RETRY_AFTER_S = 1.0
# JSON-RPC reserves -32000..-32099 for implementation-defined server errors; A2A uses -32001..-32009.
OVERLOADED_CODE = -32050
OVERLOADED_REASON = "AGENT_OVERLOADED"
DOMAIN = "podium"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_COUNT_LIMIT = 100_000  # most undelivered entries counted one by one when Redis cannot report the lag

# Shared by the scripts. unacked(inbox, group, len, limit) -> pending, undelivered: what the group has not
# acknowledged. XINFO GROUPS reports ``lag`` (Redis >= 7) unless entries were deleted inside the range;
# then the undelivered entries are counted, up to ``limit``. With no group yet, every entry waits.
_UNACKED = """
local function unacked(key, group, len, limit)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f['name'] == group then
      local lag = f['lag']
      if not lag then
        lag = #redis.call('XRANGE', key, '(' .. f['last-delivered-id'], '+', 'COUNT', limit)
      end
      return tonumber(f['pending']), tonumber(lag)
    end
  end
  return 0, len
end
local function limits(key, default_capacity, default_retry_ms)
  local l = redis.call('HMGET', key, 'capacity', 'retry_after_ms')
  return tonumber(l[1] or default_capacity), tonumber(l[2] or default_retry_ms)
end
"""

# KEYS: inbox, limits. ARGV: group, default capacity, default retry ms, check (1/0), field, envelope.
# Returns {1, entry id} when appended, {0, waiting, capacity, retry ms} when the inbox is full.
_ADMIT = (
    _UNACKED
    + """
if ARGV[4] == '1' then
  local capacity, retry_ms = limits(KEYS[2], ARGV[2], ARGV[3])
  if capacity > 0 then
    local len = redis.call('XLEN', KEYS[1])
    if len >= capacity then
      local pending, undelivered = unacked(KEYS[1], ARGV[1], len, capacity)
      if pending + undelivered >= capacity then
        return {0, pending + undelivered, capacity, retry_ms}
      end
    end
  end
end
return {1, redis.call('XADD', KEYS[1], '*', ARGV[5], ARGV[6])}
"""
)

# KEYS: inbox, limits, dlq. ARGV: group, default capacity, default retry ms, count limit.
# Returns {undelivered, pending, oldest pending id or '', now ms, capacity, retry ms, dead letters}.
_STATS = (
    _UNACKED
    + """
local capacity, retry_ms = limits(KEYS[2], ARGV[2], ARGV[3])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('XLEN', KEYS[3])
local len = redis.call('XLEN', KEYS[1])
if len == 0 then return {0, 0, '', now_ms, capacity, retry_ms, dead} end
local pending, undelivered = unacked(KEYS[1], ARGV[1], len, tonumber(ARGV[4]))
local oldest = ''
if pending > 0 then oldest = redis.call('XPENDING', KEYS[1], ARGV[1])[2] end
return {undelivered, pending, oldest, now_ms, capacity, retry_ms, dead}
"""
)


class AgentOverloaded(A2AClientError):
    """The agent's inbox is full (or Redis is out of memory): nothing was queued; retry later or elsewhere.

    A transient condition: back off for :attr:`retry_after_s` or call another agent with the skill.
    """

    message = "agent is overloaded"

    def __init__(
        self,
        agent: str,
        *,
        waiting: int | None = None,
        capacity: int | None = None,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
        reason: str | None = None,
    ) -> None:
        self.agent, self.waiting, self.capacity = agent, waiting, capacity
        self.retry_after_s = max(0.0, retry_after_s)
        why = reason or f"{waiting} requests waiting (capacity {capacity})"
        data = {"reason": OVERLOADED_REASON, "agent": agent, "retryAfterS": self.retry_after_s}
        if waiting is not None:
            data |= {"waiting": waiting, "capacity": capacity}
        super().__init__(f"agent {agent} is overloaded: {why}; retry after {self.retry_after_s:g}s", data)

    @classmethod
    def out_of_memory(cls, agent: str, retry_after_s: float = DEFAULT_RETRY_AFTER_S) -> AgentOverloaded:
        return cls(
            agent,
            retry_after_s=retry_after_s,
            reason="Redis is out of memory (maxmemory reached with noeviction)",
        )


@dataclass(frozen=True, slots=True)
class QueueStats:
    """An inbox's backlog as Redis saw it at ``now_ms``."""

    depth: int  # entries not yet delivered to any replica
    pending: int  # delivered, not yet acknowledged
    capacity: int  # 0: unlimited
    retry_after_s: float
    oldest_pending_age_s: float | None  # since the oldest pending entry was published
    dead_letters: int

    @property
    def waiting(self) -> int:
        """What counts against the capacity: everything not yet acknowledged."""
        return self.depth + self.pending

    def to_dict(self) -> dict[str, Any]:
        """JSON for agent listings (``podium agents --json``, the registry's ``GET /agents``)."""
        return {
            "depth": self.depth,
            "pending": self.pending,
            "waiting": self.waiting,
            "capacity": self.capacity,
            "oldestPendingAgeS": self.oldest_pending_age_s,
            "deadLetters": self.dead_letters,
        }


class Inboxes:
    """Capacity-checked publishing to agents' inboxes, and their backlog figures, over one Redis client.

    ``default_capacity`` and ``default_retry_after_s`` apply to an agent whose runtime never wrote its
    limits (it has not started yet).
    """

    def __init__(
        self,
        redis: Any,
        *,
        default_capacity: int = DEFAULT_CAPACITY,
        default_retry_after_s: float = DEFAULT_RETRY_AFTER_S,
    ) -> None:
        self.redis = redis
        self.default_capacity = default_capacity
        self.default_retry_ms = int(default_retry_after_s * 1000)
        self._writes = coalesced(redis)  # publishes share the process's auto-pipeline (bus.autopipeline)
        self._admit = redis.register_script(_ADMIT)
        self._stats = redis.register_script(_STATS)
        self._notifier = notifier_for(redis)

    async def publish(self, keys: Keys, agent: str, env: Envelope, *, check: bool = True) -> str:
        """Append ``env`` to ``agent``'s inbox and return its entry id.

        With ``check`` (new work), refuses when the inbox already holds its capacity of unacknowledged
        entries. Raises :class:`AgentOverloaded` when refused or when Redis is out of memory, and
        ``redis.RedisError`` for other failures; nothing is queued when it raises.
        """
        try:
            reply = await self._admit(
                keys=[keys.inbox(agent), keys.limits(agent)],
                args=[
                    agent,
                    self.default_capacity,
                    self.default_retry_ms,
                    "1" if check else "0",
                    FIELD,
                    env.encode(),
                ],
                client=self._writes,
            )
        except OutOfMemoryError as exc:
            raise AgentOverloaded.out_of_memory(agent, self.default_retry_ms / 1000) from exc
        if int(reply[0]) != 1:
            raise AgentOverloaded(
                agent, waiting=int(reply[1]), capacity=int(reply[2]), retry_after_s=int(reply[3]) / 1000
            )
        if self._notifier is not None:
            self._notifier.notify(keys.inbox(agent))
        return text(reply[1])

    async def stats(self, keys: Keys, agents: Sequence[str]) -> dict[str, QueueStats]:
        """The backlog of each agent's inbox. Raises ``redis.RedisError`` on failure."""
        # One script call per agent (each reads one slot, so this works on Redis Cluster too); listings
        # name a handful of agents.
        found: dict[str, QueueStats] = {}
        for agent in agents:
            row = await self._stats(
                keys=[keys.inbox(agent), keys.limits(agent), keys.dlq(agent)],
                args=[agent, self.default_capacity, self.default_retry_ms, _COUNT_LIMIT],
            )
            found[agent] = _stats(row)
        return found

    async def overloaded(self, keys: Keys, agent: str, extra: int = 0) -> AgentOverloaded | None:
        """The error to answer new work with when ``agent``'s waiting entries plus ``extra`` (e.g. requests
        in flight over HTTP) reach its capacity; None while there is room. Raises ``redis.RedisError``."""
        stats = (await self.stats(keys, [agent]))[agent]
        waiting = stats.waiting + extra
        if stats.capacity <= 0 or waiting < stats.capacity:
            return None
        return AgentOverloaded(
            agent, waiting=waiting, capacity=stats.capacity, retry_after_s=stats.retry_after_s
        )


async def set_limits(redis: Any, keys: Keys, agent: str, *, capacity: int, retry_after_s: float) -> None:
    """Record ``agent``'s inbox capacity (0: unlimited) and retry hint, for every publisher to enforce.

    Raises ``ValueError`` for negative values and ``redis.RedisError`` on failure.
    """
    if capacity < 0 or retry_after_s < 0:
        raise ValueError(f"capacity and retry-after must be >= 0, got {capacity} and {retry_after_s}")
    await redis.hset(
        keys.limits(agent), mapping={"capacity": capacity, "retry_after_ms": int(retry_after_s * 1000)}
    )


def _stats(row: Sequence[Any]) -> QueueStats:
    depth, pending, oldest, now_ms, capacity, retry_ms, dead = row
    oldest_id = text(oldest)
    age = None
    if oldest_id:
        age = max(0.0, (int(now_ms) - int(oldest_id.split("-")[0])) / 1000)
    return QueueStats(
        depth=int(depth),
        pending=int(pending),
        capacity=int(capacity),
        retry_after_s=int(retry_ms) / 1000,
        oldest_pending_age_s=age,
        dead_letters=int(dead),
    )


# -- the error on the wire ---------------------------------------------------------------------------


def error_details(exc: AgentOverloaded) -> list[dict[str, Any]]:
    """``google.rpc`` typed details, as A2A's own errors carry them: an ErrorInfo and a RetryInfo."""
    metadata = {k: str(v) for k, v in (exc.data or {}).items() if k != "reason"}
    return [
        {"@type": _ERROR_INFO, "reason": OVERLOADED_REASON, "domain": DOMAIN, "metadata": metadata},
        {"@type": _RETRY_INFO, "retryDelay": f"{exc.retry_after_s:g}s"},
    ]


def retry_after_header(exc: AgentOverloaded) -> str:
    """HTTP ``Retry-After`` takes whole seconds."""
    return str(max(1, math.ceil(exc.retry_after_s)))


def jsonrpc_error(request_id: Any, exc: AgentOverloaded) -> dict[str, Any]:
    """The JSON-RPC 2.0 error response refusing a request (sent with HTTP 200, like every A2A error)."""
    error = {"code": OVERLOADED_CODE, "message": exc.message, "data": error_details(exc)}
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def rest_error(exc: AgentOverloaded) -> dict[str, Any]:
    """The HTTP+JSON error body (``google.rpc.Status``), sent with 503 and ``Retry-After``."""
    return {
        "error": {"code": 503, "status": "UNAVAILABLE", "message": exc.message, "details": error_details(exc)}
    }


# -- recognising it, however it arrives ----------------------------------------------------------------

_JSONRPC_MESSAGE = re.compile(rf"JSON-RPC Error {OVERLOADED_CODE}:")
_RETRY_IN_MESSAGE = re.compile(r"retry after (\d+(?:\.\d+)?)s")


def retry_after(exc: BaseException) -> float | None:
    """Seconds to wait before retrying when ``exc`` is the overloaded error; None for any other error.

    Recognises :class:`AgentOverloaded` from the bus transport, and what the a2a-sdk client raises for an
    overloaded agent over JSON-RPC (``A2AClientError`` "JSON-RPC Error -32050: ...") and over HTTP+JSON
    (``A2AClientError`` caused by an ``httpx.HTTPStatusError`` 503 whose body names ``AGENT_OVERLOADED``).
    Never raises.
    """
    for error in _chain(exc):
        if isinstance(error, AgentOverloaded):
            return error.retry_after_s
        if isinstance(error, httpx.HTTPStatusError):
            hint = _from_response(error.response)
            if hint is not None:
                return hint
        data = getattr(error, "data", None)
        if isinstance(data, dict) and data.get("reason") == OVERLOADED_REASON:
            return _seconds(data.get("retryAfterS"))
        message = str(getattr(error, "message", "") or error)
        if _JSONRPC_MESSAGE.search(message):
            match = _RETRY_IN_MESSAGE.search(message)
            return float(match.group(1)) if match else DEFAULT_RETRY_AFTER_S
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _from_response(response: httpx.Response) -> float | None:
    try:
        body = json.loads(response.content)
    except (ValueError, httpx.ResponseNotRead):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return None
    infos = [d for d in details if isinstance(d, dict)]
    if not any(d.get("@type") == _ERROR_INFO and d.get("reason") == OVERLOADED_REASON for d in infos):
        return None
    for d in infos:
        if d.get("@type") == _RETRY_INFO:
            hint = _seconds(str(d.get("retryDelay", "")).removesuffix("s"))
            if hint is not None:
                return hint
    return _seconds(response.headers.get("retry-after")) or DEFAULT_RETRY_AFTER_S


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
