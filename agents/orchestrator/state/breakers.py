"""A circuit breaker per agent, kept in Redis so every orchestrator replica sees the same one.

``{ns}:breaker:{<agent>}`` is a hash: ``state`` (closed, open, half-open), ``failures`` (consecutive
transient failures), ``opened`` (ms) and ``probe`` (ms until which one half-open probe is out). After
``threshold`` consecutive failures the breaker opens; after ``cooldown_s`` one caller may probe
(half-open); the probe's success closes it, its failure opens it again. Each change is one Lua script,
so concurrent replicas never disagree about a transition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from podium.bus.keys import Keys
from podium.bus.text import text

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

# KEYS: breaker hash. ARGV: now ms, cooldown ms, probe ms. Returns {state, allowed (0/1)}.
_ALLOW = """
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'closed' then return {'closed', 1} end
local now = tonumber(ARGV[1])
if st == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened') or '0')
  if now - opened < tonumber(ARGV[2]) then return {'open', 0} end
  redis.call('HSET', KEYS[1], 'state', 'half-open', 'probe', now + tonumber(ARGV[3]))
  return {'half-open', 1}
end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe') or '0')
if probe > now then return {'half-open', 0} end
redis.call('HSET', KEYS[1], 'probe', now + tonumber(ARGV[3]))
return {'half-open', 1}
"""

# KEYS: breaker hash. ARGV: now ms, threshold, ttl s. Returns {old state, new state, failures}.
_FAIL = """
local old = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local new = old
if old == 'half-open' or (old == 'closed' and failures >= tonumber(ARGV[2])) then
  new = 'open'
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened', ARGV[1], 'probe', 0)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {old, new, failures}
"""

# KEYS: breaker hash. Returns the state before.
_SUCCEED = """
local old = redis.call('HGET', KEYS[1], 'state') or 'closed'
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'probe', 0)
return old
"""


@dataclass(frozen=True)
class Transition:
    agent: str
    before: str
    after: str
    failures: int = 0

    @property
    def changed(self) -> bool:
        return self.before != self.after


class BreakerStore(Protocol):
    """The breakers of every agent: :class:`Breakers` (Redis, shared by replicas) or :class:`MemoryBreakers`."""

    async def allow(self, agent: str) -> tuple[bool, str]:
        """Whether a call to ``agent`` may go out now, and the breaker's state."""
        ...

    async def failure(self, agent: str) -> Transition:
        """A transient failure of a call to ``agent``: the breaker's change."""
        ...

    async def success(self, agent: str) -> Transition:
        """A call to ``agent`` succeeded: the breaker closes."""
        ...

    async def states(self, agents: list[str]) -> dict[str, dict[str, Any]]:
        """Each agent's breaker as ``{"state", "failures", "openedAt"}``."""
        ...


class Breakers:
    """The breakers of every agent in one namespace, in Redis."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        *,
        threshold: int = 3,
        cooldown_s: float = 10.0,
        probe_s: float = 30.0,
        ttl_s: int = 24 * 3600,
    ) -> None:
        if threshold < 1:
            raise ValueError("breaker threshold must be at least 1")
        self.redis, self.keys = redis, keys
        self.threshold, self.cooldown_s, self.probe_s, self.ttl_s = threshold, cooldown_s, probe_s, ttl_s
        self._allow = redis.register_script(_ALLOW)
        self._fail = redis.register_script(_FAIL)
        self._succeed = redis.register_script(_SUCCEED)

    async def allow(self, agent: str) -> tuple[bool, str]:
        """Whether a call to ``agent`` may go out now, and the breaker's state."""
        now = int(time.time() * 1000)
        state, allowed = await self._allow(
            keys=[self.keys.breaker(agent)], args=[now, int(self.cooldown_s * 1000), int(self.probe_s * 1000)]
        )
        return bool(int(allowed)), text(state)

    async def failure(self, agent: str) -> Transition:
        now = int(time.time() * 1000)
        old, new, failures = await self._fail(
            keys=[self.keys.breaker(agent)], args=[now, self.threshold, self.ttl_s]
        )
        return Transition(agent, text(old), text(new), int(failures))

    async def success(self, agent: str) -> Transition:
        old = await self._succeed(keys=[self.keys.breaker(agent)])
        return Transition(agent, text(old), CLOSED)

    async def states(self, agents: list[str]) -> dict[str, dict[str, Any]]:
        return await breaker_states(self.redis, self.keys, agents)


async def breaker_states(redis: Any, keys: Keys, agents: list[str]) -> dict[str, dict[str, Any]]:
    """Each agent's breaker as ``{"state", "failures", "openedAt"}`` (closed when it has none)."""
    if not agents:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for agent in agents:
            pipe.hgetall(keys.breaker(agent))
        rows = await pipe.execute()
    out: dict[str, dict[str, Any]] = {}
    for agent, row in zip(agents, rows, strict=True):
        fields = {text(k): text(v) for k, v in (row or {}).items()}
        opened = int(fields.get("opened") or 0)
        out[agent] = {
            "state": fields.get("state") or CLOSED,
            "failures": int(fields.get("failures") or 0),
            "openedAt": opened / 1000 if opened else None,
        }
    return out


@dataclass
class _Breaker:
    state: str = CLOSED
    failures: int = 0
    opened: int = 0  # ms
    probe: int = 0  # ms until which the half-open probe is out


class MemoryBreakers:
    """The breakers of this process, with the transitions of :class:`Breakers`' scripts."""

    def __init__(self, *, threshold: int = 3, cooldown_s: float = 10.0, probe_s: float = 30.0) -> None:
        if threshold < 1:
            raise ValueError("breaker threshold must be at least 1")
        self.threshold, self.cooldown_s, self.probe_s = threshold, cooldown_s, probe_s
        self.breakers: dict[str, _Breaker] = {}

    async def allow(self, agent: str) -> tuple[bool, str]:
        b = self.breakers.get(agent)
        if b is None or b.state == CLOSED:
            return True, CLOSED
        now = _ms()
        if b.state == OPEN:
            if now - b.opened < self.cooldown_s * 1000:
                return False, OPEN
            b.state, b.probe = HALF_OPEN, now + int(self.probe_s * 1000)
            return True, HALF_OPEN
        if b.probe > now:
            return False, HALF_OPEN
        b.probe = now + int(self.probe_s * 1000)
        return True, HALF_OPEN

    async def failure(self, agent: str) -> Transition:
        b = self.breakers.setdefault(agent, _Breaker())
        old = b.state
        b.failures += 1
        if old == HALF_OPEN or (old == CLOSED and b.failures >= self.threshold):
            b.state, b.opened, b.probe = OPEN, _ms(), 0
        return Transition(agent, old, b.state, b.failures)

    async def success(self, agent: str) -> Transition:
        b = self.breakers.setdefault(agent, _Breaker())
        old = b.state
        b.state, b.failures, b.probe = CLOSED, 0, 0
        return Transition(agent, old, CLOSED)

    async def states(self, agents: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for agent in agents:
            b = self.breakers.get(agent, _Breaker())
            out[agent] = {
                "state": b.state,
                "failures": b.failures,
                "openedAt": b.opened / 1000 if b.opened else None,
            }
        return out


def _ms() -> int:
    return int(time.time() * 1000)
