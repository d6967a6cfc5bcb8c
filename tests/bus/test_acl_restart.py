"""With the ACLs ``podium acl`` writes, a Redis restart gives back every write, scripted ones included.

Redis replays its append-only file as the ``default`` user, and Redis 7 (Debian's 7.0.15, the redis:7 images
the compose file and the Kubernetes manifests run; fixed upstream by redis/redis#14541) re-checks each
MULTI/EXEC block of it against that user's rules. Every Lua script's writes are logged as such a block, so
with a ``default`` user allowed nothing, a restart silently dropped every task, checkpoint and lease while
plain writes came back: a task a caller held an id for was gone (the soak's lost task). The ``default``
user stays off (nothing can authenticate as it: shown here too) and its rules allow the replay.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from a2a.server.cluster import TaskVersion
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import Task, TaskState, TaskStatus
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from podium.agents.orchestrator.state.checkpoints import Checkpoints, Request, RunState
from podium.agents.orchestrator.state.leases import Leases
from podium.bus.acl import SERVICE_USERS, acl_file, users
from podium.bus.keys import Keys
from podium.bus.task_store import RedisTaskStore
from tests.support import REDIS_SERVER, RedisServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed"),
]

AGENTS = ["orchestrator", "echo"]


@pytest.fixture
def secured(tmp_path) -> Iterator[tuple[RedisServer, Keys, dict[str, str]]]:
    keys = Keys(f"t{uuid.uuid4().hex[:12]}")
    passwords = {user: secrets.token_urlsafe(12) for user in [*SERVICE_USERS, *AGENTS]}
    acl = tmp_path / "users.acl"
    acl.write_text(acl_file(users(keys, AGENTS, passwords)))
    server = RedisServer(
        persistent=True, extra_args=["--aclfile", str(acl)], auth=("admin", passwords["admin"])
    ).start()
    try:
        yield server, keys, passwords
    finally:
        server.close()


def _as(server: RedisServer, user: str, passwords: dict[str, str]) -> redis.asyncio.Redis:
    return redis.asyncio.Redis(port=server.port, username=user, password=passwords[user])


async def test_scripted_writes_survive_a_restart_and_default_stays_off(
    secured: tuple[RedisServer, Keys, dict[str, str]],
) -> None:
    server, keys, passwords = secured
    orchestrator, echo = _as(server, "orchestrator", passwords), _as(server, "echo", passwords)
    task = Task(id="t-1", context_id="c-1", status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED))
    # what accepting a task writes, each as its agent's own user, each a Lua script
    assert await Leases(orchestrator, keys, "orchestrator", "replica-1", lease_s=60).acquire(task.id)
    await Checkpoints(orchestrator, keys).start(task.id, RunState(request=Request(text="what is 15% of 240")))
    saved = await RedisTaskStore(orchestrator, keys, "orchestrator").save(
        task, event=task, prev_version=TaskVersion.MISSING, context=ServerCallContext()
    )
    await RedisTaskStore(echo, keys, "echo").save(
        task, event=task, prev_version=TaskVersion.MISSING, context=ServerCallContext()
    )
    async with echo.pipeline(transaction=True) as tx:  # a MULTI/EXEC block of the client's own
        tx.hset(keys.task("echo", "t-2"), "state", "1").expire(keys.task("echo", "t-2"), 600)
        await tx.execute()
    await orchestrator.aclose()
    await echo.aclose()

    server.restart()  # SIGTERM, as an operator (or a container runtime) stops it, then start again

    admin = _as(server, "admin", passwords)
    try:
        stored = await RedisTaskStore(admin, keys, "orchestrator").get(task.id, ServerCallContext())
        assert stored is not None and stored.version == saved  # the task, at the version it was saved
        assert await admin.exists(keys.task("echo", task.id), keys.task("echo", "t-2")) == 2
        assert (await Checkpoints(admin, keys).load(task.id)) is not None  # its run can be resumed
        assert await admin.zscore(keys.runs("orchestrator"), task.id) is not None  # and its lease is there
    finally:
        await admin.aclose()

    # `default` is still off: an unauthenticated connection is refused, and nobody can log in as it
    anonymous = redis.asyncio.Redis(port=server.port, retry=Retry(NoBackoff(), 0))
    with pytest.raises((redis.exceptions.ResponseError, redis.exceptions.AuthenticationError)):
        await anonymous.get(keys.task("orchestrator", task.id))
    await anonymous.aclose()
    for password in ("", "nopass", passwords["admin"]):
        with pytest.raises((redis.exceptions.ResponseError, redis.exceptions.AuthenticationError)):
            await redis.asyncio.Redis(
                port=server.port, username="default", password=password, retry=Retry(NoBackoff(), 0)
            ).ping()
