"""`podium acl` as a user runs it, loaded into a real redis-server (`--aclfile`): each user can do its job
and nothing more. Direct clients show what each user may do and may not touch: another agent's inbox
group, its tasks, its replies, the orchestrator's state, administrative commands, keys outside the
namespace; an agent started with another agent's user is refused with one clear line and exit status 2
(which `podium up` does not restart). Every agent working with its own user, called by the orchestrator
with its own, is the compose deployment's test (tests/test_compose.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import anyio
import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from podium.agents.cli.acl import read_env_file
from podium.agents.console import data
from podium.bus.acl import password_variable
from podium.bus.keys import Keys
from podium.bus.streams import StreamBus
from podium.registry.store import Registry
from tests.registry.helpers import podium_card
from tests.support import REDIS_SERVER, ROOT, Proc, RedisServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed"),
]

GIVEN = "admin-password-from-the-environment"


@dataclass
class Secured:
    server: RedisServer
    keys: Keys
    passwords: dict[str, str]
    acl: str
    said: str

    def url(self, user: str) -> str:
        return f"redis://{user}:{self.passwords[user]}@127.0.0.1:{self.server.port}/0"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    home = tmp_path_factory.mktemp("acl")
    keys = Keys(f"t{uuid.uuid4().hex[:12]}")
    env_file, acl = home / "podium.env", home / "users.acl"
    env_file.write_text(f"# kept\n{password_variable('registry')}='registry-password-from-the-file'\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "podium.agents.cli",
            "acl",
            "--namespace",
            keys.namespace,
            "--env-file",
            str(env_file),
            "--out",
            str(acl),
        ],
        cwd=ROOT,
        env={**os.environ, password_variable("admin"): GIVEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    passwords = {
        name.removeprefix("PODIUM_REDIS_PASSWORD_").lower(): value
        for name, value in read_env_file(env_file).items()
    }
    passwords["admin"] = GIVEN
    server = RedisServer(extra_args=["--aclfile", str(acl)], auth=("admin", GIVEN)).start()
    try:
        yield Secured(server, keys, passwords, acl.read_text(), done.stdout + done.stderr)
    finally:
        server.close()


@pytest.fixture
async def as_user(secured: Secured) -> AsyncIterator[dict[str, redis.asyncio.Redis]]:
    clients = {user: redis.asyncio.Redis.from_url(secured.url(user)) for user in secured.passwords}
    yield clients
    for client in clients.values():
        await client.aclose()


def test_podium_acl_writes_users_and_keeps_passwords_out_of_sight(secured: Secured) -> None:
    users = {line.split()[1] for line in secured.acl.splitlines()}
    agents = {p.stem for p in (ROOT / "cards").glob("*.json")}
    assert users == {"default", "admin", "registry", "mcp"} | agents
    assert "user default off" in secured.acl
    assert secured.passwords["registry"] == "registry-password-from-the-file"  # kept, not replaced
    assert len(secured.passwords) == len(users) - 1 and len(set(secured.passwords.values())) == len(users) - 1
    for password in secured.passwords.values():
        assert password not in secured.acl and password not in secured.said
    assert "generated into" in secured.said


async def _refused(call: object) -> bool:
    try:
        await call  # type: ignore[misc]
    except redis.exceptions.NoPermissionError:
        return True
    except redis.exceptions.ResponseError as exc:  # refused inside a script
        return "can't access" in str(exc) or "no permissions" in str(exc)
    return False


async def test_each_user_may_do_its_job_and_nothing_more(
    secured: Secured, as_user: dict[str, redis.asyncio.Redis]
) -> None:
    k = secured.keys
    analyst, writer, admin, registry = (as_user[u] for u in ("analyst", "writer", "admin", "registry"))
    with pytest.raises(redis.exceptions.AuthenticationError):
        await redis.asyncio.Redis(
            port=secured.server.port, username="analyst", password="wrong", retry=Retry(NoBackoff(), 0)
        ).ping()
    anonymous = redis.asyncio.Redis(port=secured.server.port, retry=Retry(NoBackoff(), 0))
    with pytest.raises(
        (redis.exceptions.ResponseError, redis.exceptions.AuthenticationError)
    ):  # default: off
        await anonymous.ping()
    await anonymous.aclose()

    # its own inbox as a consumer; its own tasks
    await analyst.xgroup_create(k.inbox("analyst"), "analyst", id="0", mkstream=True)
    await analyst.xreadgroup("analyst", "a-1", {k.inbox("analyst"): ">"}, count=1)
    await writer.xgroup_create(k.inbox("writer"), "writer", id="0", mkstream=True)
    await writer.xadd(k.inbox("writer"), {"e": "for the writer"})
    writer_task = k.task("writer", "t1")
    await writer.hset(writer_task, "state", "working")
    # another agent's inbox group, its entries, its claims: refused
    assert await _refused(analyst.xreadgroup("writer", "a-1", {k.inbox("writer"): ">"}, count=1))
    assert await _refused(analyst.xrange(k.inbox("writer")))
    assert await _refused(analyst.xautoclaim(k.inbox("writer"), "writer", "a-1", 0))
    assert await _refused(analyst.xgroup_destroy(k.inbox("writer"), "writer"))
    assert await _refused(analyst.xrange(k.dlq("writer")))
    # nor through a script: the calls inside are checked too
    assert await _refused(
        analyst.eval("return redis.call('XRANGE', KEYS[1], '-', '+')", 1, k.inbox("writer"))
    )
    # publishing to another agent's inbox is what it may do there (bus.backpressure's admission script)
    await analyst.eval("return redis.call('XADD', KEYS[1], '*', 'e', 'x')", 1, k.inbox("writer"))
    # another agent's tasks, their events and its task index are out of reach
    assert await _refused(analyst.hgetall(writer_task))
    assert await _refused(analyst.xrange(k.task_events("writer", "t1")))
    assert await _refused(analyst.zrange(k.task_index("writer"), 0, -1))
    await analyst.hgetall(k.task("analyst", "t1"))
    # another process's replies: it may answer into them, not read them
    await analyst.xadd(k.reply("writer.c1"), {"e": "reply"})
    assert await _refused(analyst.xrange(k.reply("writer.c1")))
    await analyst.xrange(k.reply("analyst.c1"))
    # the orchestrator's state is the orchestrator's
    assert await _refused(analyst.hgetall(k.run("t1")))
    await as_user["orchestrator"].hgetall(k.run("t1"))
    await as_user["orchestrator"].hgetall(f"{k.namespace}:workflows")  # named workflows: it reads them
    assert await _refused(as_user["orchestrator"].hset(f"{k.namespace}:workflows", "w", "{}"))
    # no administrative commands for anyone, no keys outside the namespace
    for client in (analyst, admin, registry, as_user["orchestrator"]):
        assert await _refused(client.flushall())
        assert await _refused(client.config_set("appendonly", "no"))
        assert await _refused(client.keys("*"))
        assert await _refused(client.execute_command("ACL", "LIST"))
        assert await _refused(client.get("elsewhere:key"))
    # discovery as an agent prunes only its own stale instances, and never fails on another agent's
    await admin.zadd(k.instances("writer"), {"gone-1": 1.0})
    await Registry(admin, k).register_standby(podium_card("writer", namespace=k.namespace))
    assert await Registry(analyst, k).list() is not None
    assert await admin.zscore(k.instances("writer"), "gone-1") == 1.0  # left for the registry user
    await Registry(registry, k).list()
    assert await admin.zscore(k.instances("writer"), "gone-1") is None
    # the console's views as the admin user (it reads every agent's queues, tasks and dead letters)
    await data.agents(admin, k)
    await data.tasks(admin, k)
    await data.dead_letter_counts(StreamBus(admin, k))
    # the registry reads cards and queues, and consumes nothing; the admin sees every key of the namespace
    assert "writer" in [e.name for e in await Registry(registry, k).list()]
    assert await _refused(registry.xreadgroup("writer", "r-1", {k.inbox("writer"): ">"}, count=1))
    assert len(await admin.xrange(k.inbox("writer"))) == 2
    assert k.inbox("writer").encode() in [key async for key in admin.scan_iter(match=f"{k.namespace}:*")]


async def test_an_agent_started_with_another_agents_user_is_refused_in_one_line(secured: Secured) -> None:
    """(Every agent working with its own user, the orchestrator asking them, is tests/test_compose.py.)"""
    ns = secured.keys.namespace
    impostor = Proc.podium("agent", "writer", "--redis-url", secured.url("analyst"), "--namespace", ns)
    try:
        await anyio.to_thread.run_sync(impostor.proc.wait, 120)
        out = impostor.output()
        assert impostor.proc.returncode == 2, out  # a configuration mistake: podium up does not restart it
        assert out.count("Redis refused user 'analyst'") == 1 and "podium acl" in out, out
        assert "Traceback" not in out and secured.passwords["analyst"] not in out
    finally:
        impostor.close()
