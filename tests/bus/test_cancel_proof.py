"""A cancel sent over the bus is acted on only for the caller that sent it (``bus.proofs``), with the ACLs
``podium acl`` writes loaded into a real redis-server and every party connected as its own Redis user: the
probe agent as ``probe``, the task's owner as ``writer``, a forger as ``researcher``. The forger may publish
a CancelTask naming the writer's reply stream (or one naming no client, which would act on every task),
but it cannot write the writer's proof, so the probe answers TaskNotFound and the task keeps running; the
writer's own cancel works."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import CancelTaskRequest, GetTaskRequest, SendMessageConfiguration, TaskState
from a2a.utils.errors import TaskNotFoundError
from redis.exceptions import NoPermissionError

from podium.bus.a2a_client import BusClient
from podium.bus.acl import acl_file, users
from podium.bus.binding import error_from_payload
from podium.bus.connection import connect
from podium.bus.envelope import Envelope, Kind
from podium.bus.keys import Keys
from podium.bus.streams import FIELD, StreamBus
from tests.agents.agent_procs import text_request
from tests.bus.test_binding_promises import AGENT, Probe, _card, serving
from tests.support import REDIS_SERVER, RedisServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed"),
]

USERS = (AGENT, "writer", "researcher")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Keys, dict[str, str]]]:
    keys = Keys(f"t{uuid.uuid4().hex[:12]}")
    passwords = {name: f"{name}-{uuid.uuid4().hex}" for name in (*USERS, "admin", "registry", "mcp")}
    acl = Path(tmp_path_factory.mktemp("proof")) / "users.acl"
    acl.write_text(acl_file(users(keys, USERS, passwords)))
    server = RedisServer(extra_args=["--aclfile", str(acl)], auth=("admin", passwords["admin"])).start()
    try:
        yield server, keys, passwords
    finally:
        server.close()


async def as_user(secured: Any, user: str) -> Any:
    server, _, passwords = secured
    return connect(f"redis://{user}:{passwords[user]}@127.0.0.1:{server.port}/0")


async def forged_cancel(forger: Any, admin: Any, keys: Keys, task_id: str, reply_to: str) -> BaseException:
    """Publish, as ``forger``, a CancelTask whose answers go to ``reply_to``; the error it was answered with
    (read as admin: the forger cannot read that stream)."""
    env = Envelope(method="CancelTask", payload={"id": task_id}, sender="writer", reply_to=reply_to)
    await StreamBus(forger, keys).publish(keys.inbox(AGENT), env)
    with anyio.fail_after(30):
        while True:
            for _, fields in await admin.xrange(reply_to):
                reply = Envelope.decode(fields[FIELD.encode()])
                if reply.correlation_id == env.id:
                    assert reply.kind == Kind.ERROR, reply
                    return error_from_payload(reply.payload)
            await anyio.sleep(0.05)


@pytest.fixture
async def parties(secured: Any) -> AsyncIterator[dict[str, Any]]:
    conns = {user: await as_user(secured, user) for user in (*USERS, "admin")}
    try:
        yield conns
    finally:
        for conn in conns.values():
            await conn.aclose()


async def test_a_forged_cancel_is_refused_and_the_owners_cancel_works(
    secured: Any, parties: dict[str, Any]
) -> None:
    _, keys, _ = secured
    async with (
        serving(parties[AGENT], keys, Probe()),
        BusClient(parties["writer"], keys, sender="writer", default_timeout=30) as bus,
    ):
        factory = ClientFactory(ClientConfig(streaming=False, supported_protocol_bindings=["redis-streams"]))
        bus.register(factory)
        writer = factory.create(_card(keys))
        try:
            request = text_request("wait")
            request.configuration.CopyFrom(SendMessageConfiguration(return_immediately=True))
            with anyio.fail_after(30):
                task = [ev async for ev in writer.send_message(request)][-1].task
            # the forger cannot write the writer's proof ...
            with pytest.raises(NoPermissionError):
                await parties["researcher"].set(keys.proof(bus.client_id, "forged"), "x")
            # ... so a cancel naming the writer's reply stream, or no client at all, finds no task
            for reply_to in (keys.reply(f"writer.{uuid.uuid4().hex}"), keys.reply(uuid.uuid4().hex)):
                refused = await forged_cancel(
                    parties["researcher"], parties["admin"], keys, task.id, reply_to
                )
                assert isinstance(refused, TaskNotFoundError), refused
            state = (await writer.get_task(GetTaskRequest(id=task.id))).status.state
            assert state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)  # not cancelled
            cancelled = await writer.cancel_task(CancelTaskRequest(id=task.id))
            assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        finally:
            await writer.close()
