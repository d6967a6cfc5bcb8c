"""The registry proper: cards in Redis, instances that heartbeat with a TTL, and discovery.

Keys (all from ``bus.keys.Keys``): ``card(name)`` is one agent's JSON record (the card plus whether it is signed,
by which trusted key, when it was registered, whether it is static or standby and from which URL), a key only that
agent's Redis user and the registry may write (bus.acl), and ``card_index()`` the set of names with a card (agents'
users may only add to it; a name whose card key is gone is skipped and pruned);
``alive(agent, instance)`` is a string with a TTL holding one instance's info; ``instances(agent)`` is a sorted
set indexing an agent's instances by last heartbeat, pruned whenever it is read. The alive keys are the
authority, so a crashed instance disappears when its TTL runs out, and no clock needs to agree with another.

Discovery (``list``, ``get``, ``find``) returns only agents with at least one alive instance, plus *static*
agents (outside A2A agents registered by URL, which Podium cannot see beating) and *standby* agents (bus agents
an autoscaler runs: discoverable with no replica, their requests wait in their inbox until one starts). A registry built with
``trusted_keys`` refuses unsigned or badly signed cards when they are registered and skips them when read.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio
from a2a.types import AgentCard
from redis.exceptions import RedisError

from podium.bus.backpressure import Inboxes
from podium.bus.keys import Keys, validate_name
from podium.bus.text import text
from podium.registry import records
from podium.registry.cards import card_from_json, card_to_dict, validate_card
from podium.registry.entries import AgentEntry, Instance, Match, new_instance_id
from podium.registry.errors import CardError, NameTaken, SignatureError
from podium.registry.ranking import BM25, skill_terms
from podium.registry.signing import TrustedKeys

logger = logging.getLogger(__name__)

_PARSED_MAX = 10_000  # parsed card records kept per Registry


class Registry:
    """Cards and heartbeats in Redis under one namespace. ``redis`` is an async client the caller owns."""

    @classmethod
    def from_env(cls, redis: Any, keys: Keys) -> Registry:
        """A registry that trusts the keys in ``PODIUM_TRUSTED_KEYS`` (none: accepts unsigned cards).

        Raises ``SigningKeyError`` when the variable names unusable keys.
        """
        return cls(redis, keys, trusted_keys=TrustedKeys.from_env())

    def __init__(self, redis: Any, keys: Keys, *, trusted_keys: TrustedKeys | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.trusted_keys = trusted_keys
        self._mine: dict[str, AgentCard] = {}  # cards this process registered, re-added if they vanish
        self._infos: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._verified: dict[str, str] = {}  # card digest -> kid, so reads verify each card once
        # name -> (raw record, its parsed record and card): discovery reads every record on every task, and
        # parsing a card (JSON, then protobuf, then validation) was most of its cost; an unchanged record is
        # parsed once. Cards handed out are shared, so nothing may change one in place.
        self._parsed: dict[str, tuple[Any, dict[str, Any], AgentCard]] = {}
        self._inboxes = Inboxes(redis)

    # -- writes ---------------------------------------------------------------------------------

    async def register(
        self, card: AgentCard, instance: str, ttl: float = 15, info: dict[str, Any] | None = None
    ) -> None:
        """Store ``card`` and mark ``instance`` alive for ``ttl`` seconds.

        Raises ``CardError`` (invalid card or instance id) or ``SignatureError`` (trusted keys set and the card is
        not signed by one); on error nothing is written.
        """
        self._check_instance(instance)
        record = self._record(card, static=False, url=None)
        self._mine[card.name] = card
        self._infos[(card.name, instance)] = (time.time(), dict(info or {}))
        # Standby is the deployment's choice (``register_standby``): a replica starting keeps it.
        if await self._is_standby(card.name):
            record["standby"] = True
        await self._put(card.name, record)
        await self.heartbeat(card.name, instance, ttl)

    async def register_standby(self, card: AgentCard) -> None:
        """Store a bus agent's ``card`` as *standby*: discoverable while no replica of it runs (an autoscaler
        starts one when its inbox has work), so requests to it wait in its inbox instead of failing. Replicas
        that register later keep the flag; :meth:`remove` drops it.

        Raises ``CardError`` or ``SignatureError`` as :meth:`register` does, ``NameTaken`` when the name is an
        outside agent's; nothing is written on error.
        """
        record = self._record(card, static=False, url=None)
        existing = await self.redis.get(self.keys.card(card.name))
        if existing is not None and json.loads(existing).get("static"):
            raise NameTaken(
                f"{card.name!r} is an outside agent; remove it before deploying a bus agent so named"
            )
        await self._put(card.name, {**record, "standby": True})

    async def _is_standby(self, name: str) -> bool:
        raw = await self.redis.get(self.keys.card(name))
        try:
            return bool(raw is not None and json.loads(raw).get("standby"))
        except ValueError:
            return False

    async def register_static(
        self,
        card: AgentCard,
        *,
        name: str | None = None,
        url: str | None = None,
        token_env: str | None = None,
    ) -> str:
        """Store an outside agent's card, always discoverable; returns its registry name (``name`` or the card's).

        The card must name at least one interface. Raises ``CardError``, ``SignatureError`` or ``NameTaken`` (the
        name is a bus agent's); nothing is written on error.
        """
        name = name or card.name
        try:
            validate_name("agent name", name)
        except ValueError as exc:
            raise CardError(f"{exc}; pass a registry name for this agent") from exc
        record = self._record(card, static=True, url=url)
        if token_env:  # the name of the variable holding the agent's own token, never the token
            record["tokenEnv"] = token_env
        existing = await self.redis.get(self.keys.card(name))
        if existing is not None and not json.loads(existing).get("static"):
            raise NameTaken(f"{name!r} is an agent on the bus; register the outside agent under another name")
        await self._put(name, record)
        return name

    async def update_card(self, card: AgentCard) -> bool:
        """Store the changed card of an agent that runs (e.g. the orchestrator's workflow skills); its
        instances are unchanged. Returns whether it was registered. Raises ``CardError``."""
        record = self._record(card, static=False, url=None)
        existing = await self.redis.get(self.keys.card(card.name))
        if existing is None:
            return False
        if card.name in self._mine:
            self._mine[card.name] = card
        if await self._is_standby(card.name):
            record["standby"] = True
        await self._put(card.name, record)
        return True

    async def heartbeat(
        self, name: str, instance: str, ttl: float = 15, info: dict[str, Any] | None = None
    ) -> bool:
        """Mark ``instance`` of ``name`` alive for another ``ttl`` seconds.

        If the card vanished (removed, or Redis lost it) and this process registered it, it is stored again.
        Returns whether the card is registered afterwards.
        """
        self._check_instance(instance)
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        now = time.time()
        started, known = self._infos.get((name, instance), (now, {}))
        if info is not None:
            known = dict(info)
        self._infos[(name, instance)] = (started, known)
        value = json.dumps({**known, "instance": instance, "started": started, "beat": now})
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.alive(name, instance), value, px=max(1, int(ttl * 1000)))
        pipe.zadd(self.keys.instances(name), {instance: now})
        pipe.sadd(self.keys.card_index(), name)  # heals a name a concurrent prune dropped
        pipe.exists(self.keys.card(name))
        *_, present = await pipe.execute()
        if present:
            return True
        card = self._mine.get(name)
        if card is None:
            return False
        logger.info("card %r vanished from the registry; registering it again", name)
        await self._put(name, self._record(card, static=False, url=None))
        return True

    async def deregister(self, name: str, instance: str) -> None:
        """Mark ``instance`` gone at once (its card stays, out of discovery until an instance beats)."""
        self._infos.pop((name, instance), None)
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self.keys.alive(name, instance))
        pipe.zrem(self.keys.instances(name), instance)
        await pipe.execute()

    async def remove(self, name: str) -> bool:
        """Delete an agent's card and instances; returns whether it was registered."""
        self._mine.pop(name, None)
        members = await self.redis.zrange(self.keys.instances(name), 0, -1)
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self.keys.card(name))
        pipe.srem(self.keys.card_index(), name)
        for member in members:
            pipe.delete(self.keys.alive(name, text(member)))
        pipe.delete(self.keys.instances(name))
        pipe.hdel(self.keys.outside_health(), name)
        removed, *_ = await pipe.execute()
        return bool(removed)

    # -- outside agents' health (their card fetched by the registry service) --------------------

    async def record_health(self, name: str, ok: bool, error: str | None = None) -> None:
        """Remember the last card check of outside agent ``name`` (only while it is registered)."""
        if not await self.redis.exists(self.keys.card(name)):
            return
        value = {"ok": ok, "checked": time.time(), **({"error": error} if error else {})}
        await self.redis.hset(self.keys.outside_health(), name, json.dumps(value))

    @asynccontextmanager
    async def announce(
        self,
        card: AgentCard,
        instance: str | None = None,
        ttl: float = 15,
        interval: float = 5,
        info: dict[str, Any] | None = None,
    ) -> AsyncIterator[str]:
        """Register ``card``, heartbeat every ``interval`` seconds in the background, deregister on exit.

        Yields the instance id (``instance`` or a new one). A failed heartbeat (Redis briefly down) is logged and
        retried at the next interval. Raises what :meth:`register` raises, before yielding.
        """
        if interval >= ttl:
            raise ValueError(f"heartbeat interval ({interval}s) must be shorter than the ttl ({ttl}s)")
        instance = instance or new_instance_id()
        await self.register(card, instance, ttl=ttl, info=info)
        error: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._beat_forever, card.name, instance, ttl, interval)
            try:
                yield instance
            except Exception as exc:
                error = exc  # re-raised below, so callers see it unwrapped by the task group
            finally:
                tg.cancel_scope.cancel()
                with anyio.move_on_after(2, shield=True):
                    try:
                        await self.deregister(card.name, instance)
                    except (RedisError, OSError) as exc:
                        logger.warning("could not deregister %s/%s: %s", card.name, instance, exc)
        if error is not None:
            raise error

    async def _beat_forever(self, name: str, instance: str, ttl: float, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            try:
                await self.heartbeat(name, instance, ttl)
            except (RedisError, OSError) as exc:
                logger.warning("heartbeat for %s/%s failed (will retry): %s", name, instance, exc)

    # -- reads ----------------------------------------------------------------------------------

    async def list(self, *, include_down: bool = False) -> builtins.list[AgentEntry]:
        """Registered agents by name; by default only discoverable ones (alive or static)."""
        records = await self._records()
        alive = await self._alive(sorted(records))
        entries = []
        for name in sorted(records):
            entry = self._entry(name, records[name], alive.get(name, []))
            if entry is not None and (include_down or entry.discoverable):
                entries.append(entry)
        return entries

    async def entry(self, name: str, *, include_down: bool = False) -> AgentEntry | None:
        """One agent with its metadata and instances, or ``None`` (also when down, unless ``include_down``)."""
        raw = await self.redis.get(self.keys.card(name))
        if raw is None:
            return None
        entry = self._entry(name, raw, (await self._alive([name])).get(name, []))
        if entry is None or not (include_down or entry.discoverable):
            return None
        return entry

    async def with_queues(self, entries: builtins.list[AgentEntry]) -> builtins.list[AgentEntry]:
        """``entries`` with their inbox backlog (depth, pending, oldest pending age, capacity) filled in;
        outside agents have no inbox. Raises ``redis.RedisError`` on failure."""
        stats = await self._inboxes.stats(self.keys, [e.name for e in entries if not e.static])
        outside = [e.name for e in entries if e.static]
        health: dict[str, Any] = {}
        if outside:
            for name, raw in zip(
                outside, await self.redis.hmget(self.keys.outside_health(), outside), strict=True
            ):
                if raw is not None:
                    health[name] = json.loads(raw)
        return [replace(e, queue=stats.get(e.name), health=health.get(e.name)) for e in entries]

    async def get(self, name: str, *, include_down: bool = False) -> AgentCard | None:
        """The card of a discoverable agent (alive or static), or ``None``."""
        entry = await self.entry(name, include_down=include_down)
        return entry.card if entry else None

    async def instances(self, name: str) -> builtins.list[Instance]:
        """The alive instances of ``name``, most recent heartbeat first."""
        return (await self._alive([name])).get(name, [])

    async def find(
        self,
        skill: str | None = None,
        tag: str | None = None,
        text: str | None = None,
        limit: int = 10,
    ) -> builtins.list[Match]:
        """Discoverable agents with a skill whose id is ``skill``, that has tag ``tag`` (case-insensitive), and
        whose skills match ``text`` (BM25, best first). Filters combine; with none, every agent matches."""
        candidates = await self.list()
        matches: builtins.list[Match] = []
        for entry in candidates:
            skills = [s.id for s in entry.card.skills if _skill_ok(entry, s.id, skill, tag)]
            if skills:
                matches.append(Match(entry, skills[0], 1.0))
        if text and text.strip():
            by_name = {m.entry.name: m.entry for m in matches}
            # Rank within every live skill, so IDF does not depend on the skill/tag filters.
            index = BM25([(e.name, s.id, skill_terms(s)) for e in candidates for s in e.card.skills])
            best: dict[str, Match] = {}
            for hit in index.search(text):
                if (
                    hit.agent in by_name
                    and hit.agent not in best
                    and _skill_ok(by_name[hit.agent], hit.skill, skill, tag)
                ):
                    best[hit.agent] = Match(by_name[hit.agent], hit.skill, hit.score)
            matches = list(best.values())
        return matches[: max(0, limit)]

    async def migrate_legacy(self) -> int:
        """Move older versions' shared card hash to one key per card (``registry.records.migrate_legacy``)."""
        return await records.migrate_legacy(self.redis, self.keys)

    # -- internals ------------------------------------------------------------------------------

    async def _put(self, name: str, record: dict[str, Any]) -> None:
        await records.put_record(self.redis, self.keys, name, record)

    async def _records(self) -> dict[str, Any]:
        return await records.read_records(self.redis, self.keys)

    async def _alive(self, names: builtins.list[str]) -> dict[str, builtins.list[Instance]]:
        return await records.read_alive(self.redis, self.keys, names)

    def _record(self, card: AgentCard, *, static: bool, url: str | None) -> dict[str, Any]:
        source = url or (f"card {card.name!r}" if card.name else "card")
        validate_card(card, source=source, require_interfaces=static, key_name=not static)
        kid = self.trusted_keys.verify(card) if self.trusted_keys else None
        return {
            "card": card_to_dict(card),
            "signed": bool(card.signatures),
            "verifiedBy": kid,
            "registered": time.time(),
            "static": static,
            "url": url,
        }

    def _entry(self, name: str, raw: Any, instances: builtins.list[Instance]) -> AgentEntry | None:
        parsed = self._parse(name, raw)
        if parsed is None:
            return None
        record, card = parsed
        verified_by = record.get("verifiedBy")
        if self.trusted_keys is not None:
            digest = hashlib.sha256(card.SerializeToString(deterministic=True)).hexdigest()
            verified_by = self._verified.get(digest)
            if verified_by is None:
                try:
                    verified_by = self._verified[digest] = self.trusted_keys.verify(card)
                except SignatureError as exc:
                    logger.warning("hiding registry entry %r: %s", name, exc)
                    return None
        return AgentEntry(
            name=name,
            card=card,
            registered=float(record.get("registered") or 0),
            signed=bool(card.signatures),
            verified_by=verified_by,
            static=bool(record.get("static")),
            standby=bool(record.get("standby")),
            url=record.get("url"),
            token_env=record.get("tokenEnv"),
            instances=tuple(instances),
        )

    def _parse(self, name: str, raw: Any) -> tuple[dict[str, Any], AgentCard] | None:
        cached = self._parsed.get(name)
        if cached is not None and cached[0] == raw:
            return cached[1], cached[2]
        try:
            record = json.loads(raw)
            card = card_from_json(
                record["card"], source=f"registry entry {name!r}", require_interfaces=False, key_name=False
            )
        except (ValueError, KeyError, TypeError, CardError) as exc:
            logger.warning("skipping unreadable registry entry %r: %s", name, exc)
            return None
        if len(self._parsed) >= _PARSED_MAX:  # names come and go: keep the cache bounded
            self._parsed.clear()
        self._parsed[name] = (raw, record, card)
        return record, card

    @staticmethod
    def _check_instance(instance: str) -> None:
        try:
            validate_name("instance id", instance)
        except ValueError as exc:
            raise CardError(str(exc)) from exc


def _skill_ok(entry: AgentEntry, skill_id: str, skill: str | None, tag: str | None) -> bool:
    found = next((s for s in entry.card.skills if s.id == skill_id), None)
    if found is None:
        return False
    if skill is not None and found.id.lower() != skill.lower():
        return False
    return tag is None or tag.lower() in (t.lower() for t in found.tags)
