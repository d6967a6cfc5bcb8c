"""The registry's key space, read and written: one JSON record per card (``Keys.card``) and the index of their
names (``Keys.card_index``), each agent's alive instances (``Keys.instances`` and ``Keys.alive``), and the move
of older versions' shared card hash (``Keys.cards``) to one key per card. ``registry.store.Registry`` builds
on these; what a record holds and who may see it is decided there."""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.exceptions import NoPermissionError

from podium.bus.keys import Keys, validate_name
from podium.bus.text import text
from podium.registry.entries import Instance, instance_from_json

logger = logging.getLogger("podium.registry.store")


async def put_record(redis: Any, keys: Keys, name: str, record: dict[str, Any]) -> None:
    pipe = redis.pipeline(transaction=False)
    pipe.set(keys.card(name), json.dumps(record))
    pipe.sadd(keys.card_index(), name)
    await pipe.execute()


async def read_records(redis: Any, keys: Keys) -> dict[str, Any]:
    """Every card record by name; names in the index whose card key is gone are pruned (by a user that may)."""
    names = sorted(text(n) for n in await redis.smembers(keys.card_index()))
    if not names:
        return {}
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.get(keys.card(name))
    values = await pipe.execute()
    records = {n: v for n, v in zip(names, values, strict=True) if v is not None}
    gone = [n for n in names if n not in records]
    if gone:
        try:
            await redis.srem(keys.card_index(), *gone)
        except NoPermissionError:  # an agent's user may only add to the index: left for the registry
            logger.debug("names without a card left in the index for the registry to prune")
    return records


async def read_alive(redis: Any, keys: Keys, names: list[str]) -> dict[str, list[Instance]]:
    if not names:
        return {}
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.zrange(keys.instances(name), 0, -1)
    members = [[text(m) for m in ms] for ms in await pipe.execute()]
    pairs = [(name, inst) for name, ms in zip(names, members, strict=True) for inst in ms]
    if not pairs:
        return {}
    pipe = redis.pipeline(transaction=False)
    for name, inst in pairs:
        pipe.get(keys.alive(name, inst))
    values = await pipe.execute()
    alive: dict[str, list[Instance]] = {}
    stale = redis.pipeline(transaction=False)
    n_stale = 0
    for (name, inst), value in zip(pairs, values, strict=True):
        if value is None:
            stale.zrem(keys.instances(name), inst)
            n_stale += 1
            continue
        alive.setdefault(name, []).append(instance_from_json(inst, value))
    if n_stale:
        try:
            await stale.execute()
        except NoPermissionError:  # housekeeping: a least-privilege agent user may prune only its own
            logger.debug("stale instances of other agents left for the registry to prune")
    for items in alive.values():
        items.sort(key=lambda i: -i.beat)
    return alive


async def migrate_legacy(redis: Any, keys: Keys) -> int:
    """Move the cards of the shared hash older versions kept (``Keys.cards()``) into one key per card, keeping
    a card already stored the new way, and delete the hash; returns how many moved. Needs the registry's
    or the admin's Redis user (``podium registry`` and ``podium prepare`` call it)."""
    old = {text(k): v for k, v in (await redis.hgetall(keys.cards())).items()}
    moved = 0
    for name, raw in sorted(old.items()):
        try:
            validate_name("agent name", name)
        except ValueError:
            continue
        if await redis.set(keys.card(name), raw, nx=True):
            moved += 1
        await redis.sadd(keys.card_index(), name)
    if old:
        await redis.delete(keys.cards())
        logger.info("moved %d card(s) from the old shared hash %s to one key per card", moved, keys.cards())
    return moved
