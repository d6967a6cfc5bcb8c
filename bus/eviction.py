"""A Redis that keeps what it is given: refuse to run on a Redis that may evict keys to free memory.

With any ``maxmemory-policy`` but ``noeviction``, a Redis that reaches ``maxmemory`` silently deletes
keys: queued requests, replies, task state. With ``noeviction`` it refuses writes instead, which Podium
turns into the loud, transient ``AgentOverloaded`` error (see :mod:`bus.backpressure`). Agents and
``podium up`` call :func:`check_eviction` on start: an evicting policy stops them, unless eviction is
explicitly allowed (``--allow-eviction`` / ``PODIUM_ALLOW_EVICTION=1``), when it is only a warning.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from podium.bus.connection import is_embedded
from podium.bus.errors import ConfigError
from podium.bus.text import text

logger = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"
ALLOW_ENV = "PODIUM_ALLOW_EVICTION"
_FIX = (
    "set `maxmemory-policy noeviction` (redis.conf, or `redis-cli CONFIG SET maxmemory-policy noeviction`), "
    f"or run anyway with --allow-eviction / {ALLOW_ENV}=1"
)


class EvictionPolicyError(ConfigError):
    """Redis may evict keys when it runs out of memory, which would silently drop accepted work."""

    default = f"Redis may evict keys when memory runs out; {_FIX}"


@dataclass(frozen=True, slots=True)
class MemoryPolicy:
    """What a Redis does when memory runs out; ``policy`` None when it could not be read (``error``)."""

    policy: str | None
    maxmemory: int | None = None
    error: str | None = None

    @property
    def evicts(self) -> bool:
        return self.policy is not None and self.policy != SAFE_POLICY

    def describe(self) -> str:
        limit = "no maxmemory set" if not self.maxmemory else f"maxmemory {self.maxmemory} bytes"
        return f"maxmemory-policy {self.policy} ({limit})"


def allowed_from_env() -> bool:
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")


async def read_policy(redis: Any) -> MemoryPolicy:
    """The server's eviction policy, from ``CONFIG GET`` or, where ACLs or a managed service refuse that,
    ``INFO memory``. On Redis Cluster, the first evicting primary's. Never raises for a refused command;
    raises ``redis.RedisError`` when Redis cannot be reached."""
    errors: list[str] = []
    for read in (_from_config, _from_info):
        try:
            policies = await read(redis)
        except ResponseError as exc:  # NOPERM under ACLs, or CONFIG renamed/disabled
            errors.append(str(exc))
            continue
        if policies:
            return next((p for p in policies if p.evicts), policies[0])
    return MemoryPolicy(None, error="; ".join(errors) or "Redis did not report it")


async def check_eviction(redis: Any, *, allow: bool, who: str) -> MemoryPolicy:
    """Refuse (or with ``allow``, warn) when ``redis`` may evict keys; warn when it cannot be checked.

    ``who`` names the caller in messages (e.g. ``"podium agent echo"``). The embedded bus never evicts.
    Raises :class:`EvictionPolicyError` for an evicting policy unless ``allow``, and ``redis.RedisError``
    when Redis cannot be reached.
    """
    if is_embedded(redis):
        return MemoryPolicy(SAFE_POLICY)
    found = await read_policy(redis)
    if found.policy is None:
        logger.warning(
            "%s: cannot check Redis's maxmemory-policy (%s); make sure it is %s, or Redis may silently "
            "drop queued requests and task state when memory runs out",
            who, found.error, SAFE_POLICY,
        )  # fmt: skip
    elif found.evicts:
        message = (
            f"Redis runs with {found.describe()}: when memory runs out it evicts keys, silently dropping "
            f"queued requests, replies and task state"
        )
        if not allow:
            raise EvictionPolicyError(f"{message}; {_FIX}")
        logger.warning("%s: %s (allowed by --allow-eviction / %s)", who, message, ALLOW_ENV)
    return found


async def _from_config(redis: Any) -> list[MemoryPolicy]:
    if isinstance(redis, RedisCluster):
        replies = await redis.config_get("maxmemory*", target_nodes=RedisCluster.PRIMARIES)
        values: list[Any] = list(replies.values()) if _per_node(replies) else [replies]
    else:
        values = [await redis.config_get("maxmemory*")]
    return [_policy(v, "maxmemory-policy", "maxmemory") for v in values if v]


async def _from_info(redis: Any) -> list[MemoryPolicy]:
    if isinstance(redis, RedisCluster):
        replies = await redis.info("memory", target_nodes=RedisCluster.PRIMARIES)
        values: list[Any] = list(replies.values()) if _per_node(replies) else [replies]
    else:
        values = [await redis.info("memory")]
    return [_policy(v, "maxmemory_policy", "maxmemory") for v in values if v and "maxmemory_policy" in v]


def _per_node(replies: Any) -> bool:
    return isinstance(replies, dict) and all(isinstance(v, dict) for v in replies.values()) and bool(replies)


def _policy(values: dict[Any, Any], policy_key: str, limit_key: str) -> MemoryPolicy:
    fields = {text(k): text(v) for k, v in values.items()}
    try:
        limit: int | None = int(fields.get(limit_key) or 0)
    except ValueError:
        limit = None
    return MemoryPolicy(fields.get(policy_key) or None, limit)
