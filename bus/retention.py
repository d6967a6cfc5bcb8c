"""Retention: how each stream is kept bounded without dropping anything someone still needs.

* **Inboxes** are never trimmed by length when published to. A timer (:meth:`Retention.run`, run by every
  agent replica) removes entries that every consumer group has acknowledged: an entry is removable when
  it was delivered (at or before the group's last-delivered id) and is no longer pending, for every
  group. One Lua script computes that floor from ``XINFO GROUPS``/``XPENDING`` and trims below it with
  ``XTRIM MINID``, atomically, so a pass can never race a delivery. Whole stream nodes go first, at most
  ``max_per_call`` entries per script call (which bounds how long Redis is busy), then the remainder of
  the last node. Acknowledged entries younger than ``inbox_keep_s`` may be kept (default none).
  An inbox nobody has created a group on yet is not trimmed at all.
* **Dead-letter streams** keep letters for ``dlq_max_age_s`` and at most ``dlq_maxlen`` of them, trimmed
  on the same timer (the oldest go first).
* **Reply streams** are trimmed by their only reader, the caller's ``BusClient``, up to what it has read
  (:func:`trim_through`); they expire when their caller stops refreshing them.
* **Task event streams** are kept whole while the task is live and capped once it is terminal (see
  ``bus.task_store``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from podium.bus.backoff import Backoff
from podium.bus.keys import Keys

logger = logging.getLogger(__name__)

# KEYS: inbox. ARGV: ms to keep acknowledged entries (0: none), most entries to remove.
# Returns {removed, floor}: floor is the oldest id some group still needs ('' when nothing was trimmed).
_TRIM_INBOX = """
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local function after(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms .. '-' .. string.format('%d', tonumber(seq) + 1)
end
if redis.call('XLEN', KEYS[1]) == 0 then return {0, ''} end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return {0, ''} end
local floor = nil
for _, g in ipairs(groups) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  local needed = after(f['last-delivered-id'])
  if tonumber(f['pending']) > 0 then
    local oldest = redis.call('XPENDING', KEYS[1], f['name'])[2]
    if less(oldest, needed) then needed = oldest end
  end
  if floor == nil or less(needed, floor) then floor = needed end
end
local cut = floor
if tonumber(ARGV[1]) > 0 then
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local young = string.format('%d', now_ms - tonumber(ARGV[1])) .. '-0'
  if less(young, cut) then cut = young end
end
-- Approximate trimming frees whole nodes below the cut (cheap, and LIMIT bounds it); once none is left,
-- an exact trim takes what remains below the cut in the last node.
local removed = redis.call('XTRIM', KEYS[1], 'MINID', '~', cut, 'LIMIT', ARGV[2])
if removed == 0 then removed = redis.call('XTRIM', KEYS[1], 'MINID', cut) end
return {removed, floor}
"""

# KEYS: dlq. ARGV: max age ms (0: none), max length (0: none). Returns how many letters were removed.
_TRIM_DLQ = """
local removed = 0
if tonumber(ARGV[1]) > 0 then
  local t = redis.call('TIME')
  local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
  if oldest > 0 then
    removed = removed + redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', oldest))
  end
end
if tonumber(ARGV[2]) > 0 then
  removed = removed + redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[2])
end
return removed
"""


_MAX_CALLS = 100  # inbox script calls in one pass


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long streams keep entries. Zero disables a limit (``dlq_max_age_s``, ``dlq_maxlen``)."""

    interval_s: float = 5.0  # between passes
    inbox_keep_s: float = 0.0  # acknowledged inbox entries younger than this are kept, for inspection
    max_per_call: int = 10_000  # inbox entries one script call may remove (a pass makes several calls)
    dlq_max_age_s: float = 14 * 24 * 3600
    dlq_maxlen: int = 10_000

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.max_per_call < 1:
            raise ValueError("retention interval_s must be > 0 and max_per_call >= 1")
        if min(self.inbox_keep_s, self.dlq_maxlen, self.dlq_max_age_s) < 0:
            raise ValueError("retention limits must be >= 0")


@dataclass(frozen=True, slots=True)
class Trimmed:
    """What one pass over an agent's streams removed."""

    inbox: int = 0
    dead_letters: int = 0


class Retention:
    """Applies a :class:`RetentionPolicy` to agents' inboxes and dead-letter streams over one client."""

    def __init__(self, redis: Any, keys: Keys, policy: RetentionPolicy | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.policy = policy or RetentionPolicy()
        self._trim_inbox = redis.register_script(_TRIM_INBOX)
        self._trim_dlq = redis.register_script(_TRIM_DLQ)
        self.passes = 0

    async def trim_inbox(self, agent: str) -> int:
        """Remove entries of ``agent``'s inbox that every group acknowledged (but those younger than
        ``inbox_keep_s``), at most about ``max_per_call``; returns how many (0: nothing left to remove).
        Raises ``redis.RedisError`` on failure."""
        p = self.policy
        removed, _ = await self._trim_inbox(
            keys=[self.keys.inbox(agent)], args=[int(p.inbox_keep_s * 1000), p.max_per_call]
        )
        return int(removed)

    async def trim_dead_letters(self, agent: str) -> int:
        """Remove dead letters older than ``dlq_max_age_s`` or beyond the newest ``dlq_maxlen``; returns how
        many. Raises ``redis.RedisError`` on failure."""
        p = self.policy
        return int(
            await self._trim_dlq(
                keys=[self.keys.dlq(agent)], args=[int(p.dlq_max_age_s * 1000), p.dlq_maxlen]
            )
        )

    async def run_once(self, agents: Sequence[str]) -> dict[str, Trimmed]:
        """One pass over ``agents``. Raises ``redis.RedisError`` on failure."""
        result: dict[str, Trimmed] = {}
        for agent in agents:
            inbox = 0
            for _ in range(_MAX_CALLS):  # bounded, in case acks keep arriving faster than it trims
                removed = await self.trim_inbox(agent)
                if not removed:
                    break
                inbox += removed
            result[agent] = Trimmed(inbox, await self.trim_dead_letters(agent))
        self.passes += 1
        return result

    async def run(self, agents: Sequence[str]) -> None:
        """Run a pass every ``interval_s`` until cancelled, riding out Redis errors with a backoff."""
        backoff = Backoff(first=0.5, cap=self.policy.interval_s * 4)
        while True:
            try:
                trimmed = await self.run_once(agents)
                backoff.reset()
                for agent, t in trimmed.items():
                    if t.inbox or t.dead_letters:
                        logger.debug("retention %s: %d inbox entries, %d dead letters", agent, t.inbox,
                                     t.dead_letters)  # fmt: skip
            except Exception as exc:  # a loop's top level: never let retention stop the agent
                logger.warning("retention pass failed (%s: %s); retrying", type(exc).__name__, exc)
                await backoff.sleep()
                continue
            await anyio.sleep(self.policy.interval_s)


def after(entry_id: str) -> str:
    """The smallest stream id greater than ``entry_id``."""
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


async def trim_through(redis: Any, stream: str, entry_id: str) -> int:
    """Remove ``stream``'s entries up to and including ``entry_id`` (what its only reader has read).

    Returns how many. Raises ``redis.RedisError`` on failure.
    """
    return int(await redis.xtrim(stream, minid=after(entry_id), approximate=False))
