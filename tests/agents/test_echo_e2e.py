"""End to end: two real `podium agent echo` replicas on the test Redis, called with the a2a-sdk client
over JSON-RPC, HTTP+JSON and redis-streams; tasks shared across replicas; bad input; auth; shutdown."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SendMessageConfiguration,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import MethodNotFoundError, TaskNotFoundError

from podium.bus.a2a_client import BusClient
from podium.bus.connection import connect
from podium.bus.envelope import Envelope, Kind
from podium.bus.keys import Keys
from tests.agents.agent_procs import AgentProc, fetch_card, make_client, text_request

pytestmark = pytest.mark.anyio

A2A_HEADERS = {"A2A-Version": "1.0"}


@pytest.fixture(scope="module")
def shared_namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def replicas(redis_server, shared_namespace: str) -> Iterator[list[AgentProc]]:
    """Two replicas shared by the tests that do not kill or reconfigure them."""
    procs = [
        AgentProc("echo", redis_server.url, shared_namespace, f"echo-{i}", "--claim-idle-ms", "800")
        for i in (1, 2)
    ]
    try:
        yield [p.wait_ready() for p in procs]
    finally:
        for p in procs:
            p.close()


@pytest.fixture
async def bus_client(redis_url: str, shared_namespace: str) -> AsyncIterator[BusClient]:
    redis = connect(redis_url)
    async with BusClient(redis, Keys(shared_namespace), sender="test", default_timeout=30) as client:
        yield client
    await redis.aclose()


def _final(events: list) -> tuple:
    """(last task state, artifact texts) from a list of StreamResponses."""
    state, texts = None, []
    for ev in events:
        which = ev.WhichOneof("payload")
        if which == "task":
            state = ev.task.status.state
            texts += [p.text for a in ev.task.artifacts for p in a.parts if p.text]
        elif which == "status_update":
            state = ev.status_update.status.state
        elif which == "artifact_update":
            texts += [p.text for p in ev.artifact_update.artifact.parts if p.text]
    return state, texts


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON", "redis-streams"])
@pytest.mark.parametrize("streaming", [False, True], ids=["blocking", "streaming"])
async def test_echo_over_every_binding(replicas, bus_client, binding: str, streaming: bool) -> None:
    card = await fetch_card(replicas[0].url)
    assert {i.protocol_binding for i in card.supported_interfaces} == {
        "JSONRPC",
        "HTTP+JSON",
        "redis-streams",
    }
    client = make_client(card, binding, bus=bus_client, streaming=streaming)
    try:
        with anyio.fail_after(30):
            events = [ev async for ev in client.send_message(text_request(f"hello over {binding}"))]
    finally:
        await client.close()
    state, texts = _final(events)
    assert state == TaskState.TASK_STATE_COMPLETED
    assert f"hello over {binding}" in texts
    if streaming:
        kinds = [ev.WhichOneof("payload") for ev in events]
        assert "status_update" in kinds and "artifact_update" in kinds


async def test_tasks_are_shared_across_replicas_over_http_and_bus(replicas, bus_client) -> None:
    a, b = replicas
    card_a, card_b = await fetch_card(a.url), await fetch_card(b.url)
    via_a = make_client(card_a, "JSONRPC", streaming=False)
    via_b = make_client(card_b, "HTTP+JSON")
    via_bus = make_client(card_a, "redis-streams", bus=bus_client)
    try:
        with anyio.fail_after(30):
            # Start a slow task on replica A and return at once.
            req = text_request("slow", delay_s=30)
            req.configuration.CopyFrom(SendMessageConfiguration(return_immediately=True))
            first = [ev async for ev in via_a.send_message(req)]
            task_id = first[0].task.id if first[0].HasField("task") else first[0].status_update.task_id
            # B answers GetTask for A's task; so does the bus.
            got = await via_b.get_task(GetTaskRequest(id=task_id))
            assert got.id == task_id
            assert (await via_bus.get_task(GetTaskRequest(id=task_id))).id == task_id
            listed = await via_bus.list_tasks(ListTasksRequest())
            assert task_id in {t.id for t in listed.tasks}

            # Subscribe through B (which does not run it) and cancel through the bus.
            seen: list = []

            async def subscribe() -> None:
                async for ev in via_b.subscribe(SubscribeToTaskRequest(id=task_id)):
                    seen.append(ev)

            async with anyio.create_task_group() as tg:
                tg.start_soon(subscribe)
                await anyio.sleep(0.3)  # let the subscription attach; correctness does not depend on it
                cancelled = await via_bus.cancel_task(CancelTaskRequest(id=task_id))
                assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
            assert _final(seen)[0] == TaskState.TASK_STATE_CANCELED
            final = await via_a.get_task(GetTaskRequest(id=task_id))
            assert final.status.state == TaskState.TASK_STATE_CANCELED
    finally:
        for c in (via_a, via_b, via_bus):
            await c.close()


async def test_unknown_task_gives_the_same_a2a_error_over_http_and_bus(replicas, bus_client) -> None:
    card = await fetch_card(replicas[0].url)
    for binding in ("JSONRPC", "HTTP+JSON", "redis-streams"):
        client = make_client(card, binding, bus=bus_client)
        try:
            with pytest.raises(TaskNotFoundError):
                await client.get_task(GetTaskRequest(id="no-such-task"))
        finally:
            await client.close()


async def test_bad_http_requests_get_a2a_errors_and_the_agent_stays_up(replicas) -> None:
    url = replicas[0].url
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(url + "/", content=b"{not json", headers=A2A_HEADERS)
        assert r.json()["error"]["code"] == -32700
        r = await http.post(url + "/", json={"jsonrpc": "2.0", "id": 1, "method": "NoSuchMethod", "params": {}},
                            headers=A2A_HEADERS)  # fmt: skip
        assert r.json()["error"]["code"] == -32601
        r = await http.post(url + "/", json={"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": "x"}},
                            headers=A2A_HEADERS)  # fmt: skip
        assert r.json()["error"]["code"] == -32001
        r = await http.post(
            url + "/", json={"jsonrpc": "2.0", "id": 3, "method": "GetTask", "params": {"id": "x"}}
        )
        assert "error" in r.json() and r.json()["error"]["code"] == -32009  # no A2A-Version header
        big = {"jsonrpc": "2.0", "id": 4, "method": "SendMessage",
               "params": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x" * 2_000_000}]}}}  # fmt: skip
        r = await http.post(url + "/", content=json.dumps(big), headers=A2A_HEADERS)
        assert r.status_code == 413 and r.json()["error"]["code"] == -32600
        assert (await http.get(url + "/healthz")).json()["status"] == "ok"


async def test_replicas_share_the_inbox_through_the_consumer_group(replicas, bus_client) -> None:
    """More slow requests than one replica takes at once (16): both replicas must serve some."""
    card = await fetch_card(replicas[0].url)
    client = make_client(card, "redis-streams", bus=bus_client, streaming=False)
    served: list[str] = []

    async def ask(i: int) -> None:
        async for ev in client.send_message(text_request(f"share {i}", delay_s=0.5)):
            for artifact in ev.task.artifacts:
                served.extend(
                    p.data.struct_value.fields["servedBy"].string_value
                    for p in artifact.parts
                    if p.HasField("data")
                )

    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(40):
                    tg.start_soon(ask, i)
    finally:
        await client.close()
    assert len(served) == 40
    assert set(served) == {"echo-1", "echo-2"}


async def test_oversized_bus_request_gets_invalid_request(
    replicas, bus_client, shared_namespace: str
) -> None:
    from a2a.utils.errors import InvalidRequestError

    inbox = Keys(shared_namespace).inbox("echo")
    with pytest.raises(InvalidRequestError, match="too large"):
        async for _ in bus_client.call(inbox, "SendMessage", text_request("x" * 1_200_000), None):
            pass


async def test_bad_bus_envelopes_get_a2a_errors(replicas, bus_client, shared_namespace: str) -> None:
    keys = Keys(shared_namespace)
    inbox = keys.inbox("echo")
    card = await fetch_card(replicas[0].url)
    with pytest.raises(MethodNotFoundError):
        async for _ in bus_client.call(inbox, "NoSuchMethod", GetTaskRequest(id="x"), None):
            pass
    # A params payload that is not the method's request proto.
    env = Envelope(method="GetTask", payload={"id": {"nested": "wrong"}}, reply_to=bus_client.reply_to)
    redis = bus_client.bus.redis
    await bus_client.bus.publish(inbox, env)
    with anyio.fail_after(15):
        while True:
            entries = await redis.xrange(bus_client.reply_to)
            replies = [Envelope.decode(f[b"e"]) for _, f in entries]
            mine = [r for r in replies if r.correlation_id == env.id]
            if mine:
                break
            await anyio.sleep(0.05)
    assert mine[0].kind == Kind.ERROR and mine[0].payload["error"]["code"] == -32602
    # A malformed entry goes to the DLQ, and the agent keeps serving.
    await redis.xadd(inbox, {"e": b"\xff not an envelope"})
    client = make_client(card, "redis-streams", bus=bus_client)
    try:
        with anyio.fail_after(30):
            events = [ev async for ev in client.send_message(text_request("still here"))]
        assert _final(events)[0] == TaskState.TASK_STATE_COMPLETED
    finally:
        await client.close()
    assert await redis.xlen(keys.dlq("echo")) >= 1


async def test_sigkill_mid_task_another_replica_finishes_it(redis_url: str, namespace: str, redis) -> None:
    """Its own namespace: no shared replica may take the request."""
    keys = Keys(namespace)
    bus_client = BusClient(redis, keys, sender="test", default_timeout=30)
    await bus_client.start()
    first = AgentProc("echo", redis_url, namespace, "victim", "--claim-idle-ms", "500").wait_ready()
    second = None
    try:
        card = await fetch_card(first.url)
        client = make_client(card, "redis-streams", bus=bus_client, streaming=False)
        result: list = []

        async def ask() -> None:
            result.extend([ev async for ev in client.send_message(text_request("survive", delay_s=2))])

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)
                redis = bus_client.bus.redis
                while (await redis.xpending(keys.inbox("echo"), "echo"))["pending"] == 0:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
                first.proc.kill()  # SIGKILL while it holds the task
                second = AgentProc(
                    "echo", redis_url, namespace, "rescuer", "--claim-idle-ms", "500"
                ).wait_ready()
        await client.close()
        state, texts = _final(result)
        assert state == TaskState.TASK_STATE_COMPLETED and "survive" in texts
        data = [p.data for ev in result for a in ev.task.artifacts for p in a.parts if p.HasField("data")]
        assert data and "rescuer" in json.dumps(list(map(str, data)))
    finally:
        await bus_client.close()
        first.close()
        if second:
            second.close()


async def test_token_auth_and_clean_sigterm(redis_url: str, namespace: str, redis) -> None:
    token = uuid.uuid4().hex
    agent = AgentProc("echo", redis_url, namespace, "secure", env={"PODIUM_A2A_TOKEN": token}).wait_ready()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            card = (await http.get(agent.url + "/.well-known/agent-card.json")).json()
            assert "bearer" in json.dumps(card.get("securityRequirements", [])).lower()
            assert token not in json.dumps(card)
            body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
            r = await http.post(agent.url + "/", json=body, headers=A2A_HEADERS)
            assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]
            r = await http.post(
                agent.url + "/", json=body, headers={**A2A_HEADERS, "Authorization": "Bearer nope"}
            )
            assert r.status_code == 401
            r = await http.post(agent.url + "/", json=body,
                                headers={**A2A_HEADERS, "Authorization": f"Bearer {token}"})  # fmt: skip
            assert r.json()["error"]["code"] == -32001  # authorised: a real A2A answer
        keys = Keys(namespace)
        assert await redis.exists(keys.alive("echo", "secure"))
        assert agent.proc.terminate(20) == 0
        assert not await redis.exists(keys.alive("echo", "secure"))
    finally:
        agent.close()
