"""Who runs each orchestration, so a run whose replica died is resumed once, by one other replica.

``{ns}:runs:{<agent>}`` is a sorted set of in-flight task ids scored by when their lease ends (ms);
``{ns}:runs:{<agent>}:owners`` maps each to the instance holding it (same hash tag, so one script
touches both, on Redis Cluster too). A replica running a task renews its lease every few seconds; a
task waiting for the caller's approval is parked with its approval deadline as the score and no owner.
Every replica looks for runs that are due (lease or deadline passed) and takes each over with one
compare-and-set, so two replicas never resume the same run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.bus.keys import Keys
from podium.bus.text import text

# KEYS: zset, owners hash. ARGV: task, me, now ms, until ms. 1 when the lease is ours now.
_ACQUIRE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[3]) and owner and owner ~= '' and owner ~= ARGV[2] then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

# KEYS: zset, owners hash. ARGV: me, until ms, task... Renews the leases still ours; returns how many.
_RENEW = """
local n = 0
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[i])
    n = n + 1
  end
end
return n
"""

# KEYS: zset, owners hash. ARGV: task, me, score ('' = remove). Only the owner releases or parks.
_RELEASE = """
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner and owner ~= '' and owner ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], '')
end
return 1
"""


class LeaseStore(Protocol):
    """Who runs each orchestration: :class:`Leases` (Redis) or :class:`MemoryLeases`."""

    instance: str
    lease_ms: int

    async def acquire(self, task_id: str) -> bool:
        """Take (or keep) the lease of ``task_id``; False while another live replica holds it."""
        ...

    async def renew(self, task_ids: list[str]) -> int:
        """Extend the leases of ``task_ids`` still held by this replica; how many were."""
        ...

    async def release(self, task_id: str) -> None:
        """The run is over (or never started here): forget it."""
        ...

    async def park(self, task_id: str, until: float) -> None:
        """The run waits for the caller until ``until`` (unix s); any replica may take it after that."""
        ...

    async def due(self, limit: int = 32) -> list[str]:
        """Runs whose lease (or approval deadline) has passed: crashed or timed out."""
        ...

    async def owner(self, task_id: str) -> str | None:
        """The instance holding ``task_id`` (None: nobody, or parked)."""
        ...


class Leases:
    """Leases in Redis, one compare-and-set script per change, so replicas never both hold a run."""

    def __init__(self, redis: Any, keys: Keys, agent: str, instance: str, lease_s: float = 15.0) -> None:
        self.redis = redis
        self.instance = instance
        self.lease_ms = int(lease_s * 1000)
        self._keys = [keys.runs(agent), keys.runs(agent) + ":owners"]
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, task_id: str) -> bool:
        """Take (or keep) the lease of ``task_id``; False while another live replica holds it."""
        now = _now()
        got = await self._acquire(keys=self._keys, args=[task_id, self.instance, now, now + self.lease_ms])
        return bool(int(got))

    async def renew(self, task_ids: list[str]) -> int:
        if not task_ids:
            return 0
        return int(
            await self._renew(keys=self._keys, args=[self.instance, _now() + self.lease_ms, *task_ids])
        )

    async def release(self, task_id: str) -> None:
        """The run is over (or never started here): forget it."""
        await self._release(keys=self._keys, args=[task_id, self.instance, ""])

    async def park(self, task_id: str, until: float) -> None:
        """The run waits for the caller until ``until`` (unix s); any replica may take it after that."""
        await self._release(keys=self._keys, args=[task_id, self.instance, int(until * 1000)])

    async def due(self, limit: int = 32) -> list[str]:
        """Runs whose lease (or approval deadline) has passed: crashed or timed out."""
        rows = await self.redis.zrangebyscore(self._keys[0], "-inf", _now(), start=0, num=limit)
        return [text(r) for r in rows]

    async def owner(self, task_id: str) -> str | None:
        raw = await self.redis.hget(self._keys[1], task_id)
        return text(raw) or None


def _now() -> int:
    return int(time.time() * 1000)


@dataclass
class LeaseBook:
    """The leases of one agent's replicas in this process: what :class:`Leases` keeps in Redis."""

    until: dict[str, int] = field(default_factory=dict)  # task -> when its lease ends (ms)
    owners: dict[str, str] = field(default_factory=dict)  # task -> instance ('' = parked)


class MemoryLeases:
    """Leases in this process; replicas sharing one :class:`LeaseBook` see each other's."""

    def __init__(self, instance: str, lease_s: float = 15.0, book: LeaseBook | None = None) -> None:
        self.instance = instance
        self.lease_ms = int(lease_s * 1000)
        self.book = book if book is not None else LeaseBook()

    async def acquire(self, task_id: str) -> bool:
        now, book = _now(), self.book
        owner = book.owners.get(task_id)
        if book.until.get(task_id, 0) > now and owner and owner != self.instance:
            return False
        book.until[task_id], book.owners[task_id] = now + self.lease_ms, self.instance
        return True

    async def renew(self, task_ids: list[str]) -> int:
        mine = [t for t in task_ids if t in self.book.until and self.book.owners.get(t) == self.instance]
        for task_id in mine:
            self.book.until[task_id] = _now() + self.lease_ms
        return len(mine)

    async def release(self, task_id: str) -> None:
        if self._others(task_id):
            return
        self.book.until.pop(task_id, None)
        self.book.owners.pop(task_id, None)

    async def park(self, task_id: str, until: float) -> None:
        if self._others(task_id):
            return
        self.book.until[task_id], self.book.owners[task_id] = int(until * 1000), ""

    async def due(self, limit: int = 32) -> list[str]:
        now = _now()
        return [t for t, score in sorted(self.book.until.items(), key=lambda kv: kv[1]) if score <= now][
            :limit
        ]

    async def owner(self, task_id: str) -> str | None:
        return self.book.owners.get(task_id) or None

    def _others(self, task_id: str) -> bool:
        owner = self.book.owners.get(task_id)
        return bool(owner) and owner != self.instance
