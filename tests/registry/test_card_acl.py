"""Agents cannot impersonate each other (issue 27): with the ACL file `podium acl` writes loaded into a real
redis-server (`--aclfile`), each agent's real user registers and heartbeats its own card, and every write
command Redis has, sent as that user at another agent's card, liveness and instance keys, at the index of
cards (except adding to it) and at the shared hash of older versions, is refused (NOPERM), directly and from a
script; the registry, discovery and the console still list every agent; an old shared hash is migrated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio

from podium.agents.cli.acl import read_env_file
from podium.agents.console import data
from podium.bus.keys import Keys
from podium.registry.store import Registry
from tests.registry.helpers import AGENTS, custom_card, podium_card
from tests.support import REDIS_SERVER, ROOT, RedisServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed"),
]

ACL_COMMAND = (sys.executable, "-m", "podium.agents.cli", "acl")
SCRIPTS = ("eval", "eval_ro", "evalsha", "evalsha_ro", "fcall", "fcall_ro")
WRITE_IN_SCRIPT = "return redis.call('SET', KEYS[1], 'forged')"


@dataclass
class Secured:
    server: RedisServer
    keys: Keys
    passwords: dict[str, str]

    def client(self, user: str) -> redis.asyncio.Redis:
        return redis.asyncio.Redis(
            port=self.server.port, username=user, password=self.passwords[user], decode_responses=True
        )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    home = tmp_path_factory.mktemp("card-acl")
    keys = Keys(f"t{uuid.uuid4().hex[:12]}")
    env_file, acl = home / "podium.env", home / "users.acl"
    done = subprocess.run(
        [*ACL_COMMAND, "--namespace", keys.namespace, "--env-file", str(env_file), "--out", str(acl)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("PODIUM_REDIS_PASSWORD_")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    passwords = {
        name.removeprefix("PODIUM_REDIS_PASSWORD_").lower(): value
        for name, value in read_env_file(env_file).items()
    }
    assert set(AGENTS) <= set(passwords)
    server = RedisServer(extra_args=["--aclfile", str(acl)], auth=("admin", passwords["admin"])).start()
    try:
        yield Secured(server, keys, passwords)
    finally:
        server.close()


@pytest.fixture
async def users(secured: Secured) -> AsyncIterator[dict[str, redis.asyncio.Redis]]:
    clients = {user: secured.client(user) for user in secured.passwords}
    yield clients
    for client in clients.values():
        await client.aclose()


def write_commands(info: dict[str, Any]) -> list[tuple[list[str], int, int]]:
    """Every write command and subcommand of this redis-server: (name tokens, arity, first key position)."""
    found = []
    for name, spec in info.items():
        subs = spec.get("subcommands") or []
        for sub in subs:
            full, arity, _flags, first, *_rest = sub
            categories = [c.decode() if isinstance(c, bytes) else c for c in sub[6]]
            if "@write" in categories:
                found.append(((full.decode() if isinstance(full, bytes) else full).split("|"), arity, first))
        if not subs and "@write" in spec.get("acl_categories", []):
            found.append(([name], spec["arity"], spec["first_key_pos"]))
    return sorted(found)


def attempts(commands: list[tuple[list[str], int, int]], key: str, sha: str) -> list[list[str]]:
    """Each command aimed at ``key``: the key at its first key position, every other argument the key again
    (so a second key in the command is the target too, and no outside key makes Redis refuse it for
    another reason); scripts get a script that writes ``key``."""
    out = []
    for tokens, arity, first in commands:
        name = tokens[0].lower()
        if name in SCRIPTS:
            body = sha if name.startswith("evalsha") else WRITE_IN_SCRIPT
            out.append([tokens[0], body, "1", key])
            continue
        if name == "xreadgroup":
            out.append([tokens[0], "GROUP", "g", "c", "STREAMS", key, ">"])
            continue
        args = [*tokens] + [key] * max(abs(arity) - len(tokens), first + 1 - len(tokens), 0)
        out.append(args)
    return out


def refused(args: list[str], error: BaseException) -> bool:
    if isinstance(error, redis.exceptions.NoPermissionError):
        return True
    text = str(error)
    if args[0].lower() == "xreadgroup" and text.startswith(("NOGROUP", "WRONGTYPE")):
        # Redis 7.0 lets a user who may read a key run XREADGROUP on it; it changes a stream's consumer group
        # only, and none of these keys is a stream (nor can the user make one: XADD/XGROUP are refused above).
        return True
    return "no permissions" in text or "can't access" in text or "NOPERM" in text


async def snapshot(admin: redis.asyncio.Redis, keys: Keys, agent: str) -> dict[str, Any]:
    found: dict[str, Any] = {"card": await admin.get(keys.card(agent))}
    found["instances"] = await admin.zrange(keys.instances(agent), 0, -1, withscores=True)
    for instance, _ in found["instances"]:
        found[instance] = await admin.get(keys.alive(agent, instance))
    found["index"] = sorted(await admin.smembers(keys.card_index()))
    return found


async def test_each_agent_registers_itself_and_cannot_touch_another_agents_records(
    secured: Secured, users: dict[str, redis.asyncio.Redis], redis_url: str
) -> None:
    k = secured.keys
    admin = users["admin"]
    for agent in AGENTS:  # each agent's own registration, as its own user
        await Registry(users[agent], k).register(
            podium_card(agent, namespace=k.namespace), f"{agent}-1", ttl=60
        )
    plain = redis.Redis.from_url(redis_url)  # an ACL-free server of the same version, to list its commands
    commands = write_commands(plain.command())
    plain.close()
    assert len(commands) > 80 and ["set"] in [c[0] for c in commands]
    before = {agent: await snapshot(admin, k, agent) for agent in AGENTS}
    await admin.hset(k.cards(), "researcher", "{}")  # the shared hash of older versions, if one was left

    allowed: list[str] = []
    for agent in AGENTS:
        me = users[agent]
        sha = await me.script_load(WRITE_IN_SCRIPT)
        for other in AGENTS:
            if other == agent:
                continue
            targets = [k.card(other), k.alive(other, f"{other}-1"), k.instances(other), k.cards()]
            for key in targets:
                for args in attempts(commands, key, sha):
                    try:
                        await me.execute_command(*args)
                    except redis.exceptions.ResponseError as exc:
                        if refused(args, exc):
                            continue
                    allowed.append(f"{agent}: {' '.join(args[:4])}")
            for args in attempts(commands, k.card_index(), sha):
                if args[0].lower() == "sadd":
                    continue  # adding a name is all an agent may do to the index (see below)
                try:
                    await me.execute_command(*args)
                except redis.exceptions.ResponseError as exc:
                    if refused(args, exc):
                        continue
                allowed.append(f"{agent}: {' '.join(args[:4])}")
        # the registry API as this agent's user, for another agent's name: refused, nothing written
        with pytest.raises(redis.exceptions.NoPermissionError):
            await Registry(me, k).register(podium_card("writer" if agent != "writer" else "echo"), "fake-1")
    assert allowed == [], f"{len(allowed)} writes allowed on other agents' keys: {allowed[:20]}"
    await admin.delete(k.cards())
    assert {agent: await snapshot(admin, k, agent) for agent in AGENTS} == before

    # adding a name to the index is allowed, and inert: a name without a card is skipped and pruned
    await users["echo"].sadd(k.card_index(), "ghost")
    everyone = sorted(AGENTS)
    assert [e.name for e in await Registry(users["echo"], k).list()] == everyone  # discovery as an agent
    assert await admin.sismember(k.card_index(), "ghost")  # an agent's user cannot prune it
    assert [e.name for e in await Registry(users["registry"], k).list()] == everyone
    assert not await admin.sismember(k.card_index(), "ghost")  # the registry did
    assert await data.agent_names(admin, k) == everyone  # the console
    assert [a["name"] for a in await data.agents(admin, k)] == everyone

    # only the registry writes outside agents' cards; each agent heartbeats and leaves with its own user
    outside = custom_card(
        "currency", [{"id": "convert", "name": "Convert", "description": "Converts.", "tags": ["money"]}]
    )
    with pytest.raises(redis.exceptions.NoPermissionError):
        await Registry(users["echo"], k).register_static(outside)
    assert await Registry(users["registry"], k).register_static(outside) == "currency"
    for agent in AGENTS:
        mine = Registry(users[agent], k)
        assert await mine.heartbeat(agent, f"{agent}-1", ttl=60)
        await mine.deregister(agent, f"{agent}-1")
    left = await Registry(users["registry"], k).list(include_down=True)
    assert [(e.name, e.alive) for e in left] == sorted([(a, 0) for a in AGENTS] + [("currency", 0)])


async def test_an_old_shared_card_hash_is_moved_to_one_key_per_card(redis: Any, keys: Keys) -> None:
    """Cards an older version kept in one hash are moved by the registry (and `podium prepare`); a card already
    stored the new way wins, and the hash is deleted."""
    old = Registry(redis, keys)
    await old.register_static(
        custom_card("currency", [{"id": "c", "name": "C", "description": "Converts.", "tags": ["money"]}])
    )
    await old.register(podium_card("echo", namespace=keys.namespace), "e-1", ttl=60)
    records = {name: await redis.get(keys.card(name)) for name in ("currency", "echo")}
    newer = json.loads(records["echo"]) | {"registered": 1.0}
    await redis.delete(keys.card("currency"), keys.card_index())
    await redis.hset(keys.cards(), mapping={"currency": records["currency"], "echo": json.dumps(newer)})
    await redis.sadd(keys.card_index(), "echo")
    assert [e.name for e in await old.list()] == ["echo"]  # the hash itself is never read
    assert await Registry(redis, keys).migrate_legacy() == 1
    assert await redis.exists(keys.cards()) == 0
    assert [e.name for e in await old.list()] == ["currency", "echo"]
    assert await redis.get(keys.card("echo")) == records["echo"]  # the newer record kept
    assert await Registry(redis, keys).migrate_legacy() == 0
    assert await redis.get(keys.card("currency")) == records["currency"]
