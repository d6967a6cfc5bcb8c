"""Tasks belong to one agent, and a cancel stops the replica running the task.

Real processes on the test Redis, in one namespace: two replicas of the echo agent and the writer. The
writer must not see, list or cancel an echo task, over HTTP or over the bus, while the echo replicas share
it; a cancel sent to one echo replica stops the executor on the other replica, which runs the task, and
the task stays CANCELED.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SendMessageConfiguration,
    StreamResponse,
    TaskState,
)
from a2a.utils.errors import TaskNotFoundError

from podium.bus.a2a_client import BusClient
from podium.bus.connection import connect
from podium.bus.keys import Keys
from tests.agents.agent_procs import AgentProc, fetch_card, make_client, text_request
from tests.support import wait_until

pytestmark = pytest.mark.anyio

BINDINGS = ("JSONRPC", "HTTP+JSON", "redis-streams")
LONG_S = 60  # echo's longest delay: an executor that is not stopped runs this long


@pytest.fixture(scope="module")
def ns() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def agents(redis_server, ns: str) -> Iterator[dict[str, AgentProc]]:
    procs = {
        "a": AgentProc("echo", redis_server.url, ns, "echo-a"),
        "b": AgentProc("echo", redis_server.url, ns, "echo-b"),
        "writer": AgentProc("writer", redis_server.url, ns, "writer-1"),
    }
    try:
        for p in procs.values():
            p.wait_ready()
        yield procs
    finally:
        for p in procs.values():  # all shut down at once
            p.proc.signal(signal.SIGTERM)
        for p in procs.values():
            p.close()


@pytest.fixture
async def bus_client(redis_url: str, ns: str) -> AsyncIterator[BusClient]:
    redis = connect(redis_url)
    async with BusClient(redis, Keys(ns), sender="test", default_timeout=30) as client:
        yield client
    await redis.aclose()


def _task_of(events: list[StreamResponse]) -> str:
    first = events[0]
    return first.task.id if first.HasField("task") else first.status_update.task_id


async def _start_long(agent: AgentProc, text: str) -> str:
    """A long echo task started through ``agent``'s HTTP endpoint, so that replica runs it."""
    client = make_client(await fetch_card(agent.url), "JSONRPC", streaming=False)
    try:
        req = text_request(text, delay_s=LONG_S)
        req.configuration.CopyFrom(SendMessageConfiguration(return_immediately=True))
        with anyio.fail_after(30):
            return _task_of([ev async for ev in client.send_message(req)])
    finally:
        await client.close()


async def test_agents_never_see_or_touch_each_others_tasks(agents, bus_client) -> None:
    echo_task = await _start_long(agents["a"], "mine alone")
    writer_card = await fetch_card(agents["writer"].url)
    echo_card = await fetch_card(agents["b"].url)
    to_writer = make_client(writer_card, "redis-streams", bus=bus_client, streaming=False)
    with anyio.fail_after(30):
        writer_task = _task_of([ev async for ev in to_writer.send_message(text_request("Write: two notes"))])
    await to_writer.close()
    for binding in BINDINGS:
        writer = make_client(writer_card, binding, bus=bus_client)
        echo = make_client(echo_card, binding, bus=bus_client)
        try:
            with anyio.fail_after(30):
                with pytest.raises(TaskNotFoundError):
                    await writer.get_task(GetTaskRequest(id=echo_task))
                with pytest.raises(TaskNotFoundError):
                    await writer.cancel_task(CancelTaskRequest(id=echo_task))
                listed = {t.id for t in (await writer.list_tasks(ListTasksRequest())).tasks}
                assert writer_task in listed and echo_task not in listed
                # The other echo replica shares the task, and the writer's cancel left it running.
                shared = await echo.get_task(GetTaskRequest(id=echo_task))
                assert shared.status.state == TaskState.TASK_STATE_WORKING
                listed = {t.id for t in (await echo.list_tasks(ListTasksRequest())).tasks}
                assert echo_task in listed and writer_task not in listed
                with pytest.raises(TaskNotFoundError):
                    await echo.get_task(GetTaskRequest(id=writer_task))
        finally:
            await writer.close()
            await echo.close()
    echo = make_client(echo_card, "JSONRPC")
    try:
        cancelled = await echo.cancel_task(CancelTaskRequest(id=echo_task))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    finally:
        await echo.close()


async def _states(redis_url: str, ns: str, task_id: str) -> list[int]:
    """Every state the task's event log records, in order."""
    redis = connect(redis_url)
    try:
        entries = await redis.xrange(Keys(ns).task_events("echo", task_id))
    finally:
        await redis.aclose()
    states = []
    for _, fields in entries:
        event = StreamResponse()
        event.ParseFromString(fields[b"e"])
        which = event.WhichOneof("payload")
        if which == "task":
            states.append(event.task.status.state)
        elif which == "status_update":
            states.append(event.status_update.status.state)
        elif which == "artifact_update":
            states.append(-1)  # an artifact: echo finished its work
    return states


@pytest.mark.parametrize(
    ("to", "via"),
    [("a", "HTTP+JSON"), ("a", "redis-streams"), ("b", "JSONRPC")],
    ids=["other-replica-http", "shared-inbox", "running-replica-http"],
)
async def test_a_cancel_stops_the_replica_running_the_task_wherever_it_is_sent(
    agents, bus_client, redis_url: str, ns: str, to: str, via: str
) -> None:
    """B runs the task; the cancel goes to A over HTTP, to the shared inbox (either replica may take
    it), or to B itself. B's executor stops at once in every case, and the task stays CANCELED."""
    a, b = agents["a"], agents["b"]
    task_id = await _start_long(b, f"cancel me via {to} {via}")
    via_a = make_client(await fetch_card(agents[to].url), via, bus=bus_client, streaming=False)
    try:
        with anyio.fail_after(30):
            while (await via_a.get_task(GetTaskRequest(id=task_id))).status.state != TaskState.TASK_STATE_WORKING:  # noqa: ASYNC110  # fmt: skip
                await anyio.sleep(0.02)
            cancelled = await via_a.cancel_task(CancelTaskRequest(id=task_id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        # B, which runs it, stops its executor now, not when its 60 s of work would end.
        stopped = f"task {task_id} stopped after a cancel"
        wait_until(
            lambda: stopped in b.proc.output(), timeout=LONG_S / 3, what="replica B to stop the executor"
        )
        assert stopped not in a.proc.output()
        if via == "HTTP+JSON":  # A took the cancel and announced it; B heard it and stopped its executor
            assert f"task {task_id} was cancelled" in b.proc.output()
        # (over the bus the cancel goes to the agent's shared inbox: whichever replica takes it, B stops)
        for replica in (a, b):
            client = make_client(await fetch_card(replica.url), "JSONRPC")
            try:
                final = await client.get_task(GetTaskRequest(id=task_id))
            finally:
                await client.close()
            assert final.status.state == TaskState.TASK_STATE_CANCELED and not final.artifacts
    finally:
        await via_a.close()
    states = await _states(redis_url, ns, task_id)
    assert states[-1] == TaskState.TASK_STATE_CANCELED
    assert TaskState.TASK_STATE_COMPLETED not in states and -1 not in states
    assert states.count(TaskState.TASK_STATE_CANCELED) == 1


async def test_push_config_methods_and_extended_card_answer_over_the_bus_as_over_http(
    agents, bus_client
) -> None:
    """The bus relays every remaining A2A method to the same handler HTTP uses: same answers, same errors."""
    from a2a.types.a2a_pb2 import (
        DeleteTaskPushNotificationConfigRequest,
        GetExtendedAgentCardRequest,
        GetTaskPushNotificationConfigRequest,
        ListTaskPushNotificationConfigsRequest,
        TaskPushNotificationConfig,
    )

    card = await fetch_card(agents["a"].url)
    calls = {
        "create": lambda c: c.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id="t1", id="p1", url="https://example.org/hook")
        ),
        "get": lambda c: c.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id="t1", id="p1")
        ),
        "list": lambda c: c.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id="t1")
        ),
        "delete": lambda c: c.delete_task_push_notification_config(
            DeleteTaskPushNotificationConfigRequest(task_id="t1", id="p1")
        ),
        "card": lambda c: c.get_extended_agent_card(GetExtendedAgentCardRequest()),
    }
    answers: dict[str, dict[str, str]] = {}
    for binding in BINDINGS:
        client = make_client(card, binding, bus=bus_client)
        try:
            for name, call in calls.items():
                try:
                    with anyio.fail_after(30):
                        result = await call(client)
                    answers.setdefault(name, {})[binding] = (
                        f"ok {type(result).__name__} {getattr(result, 'name', '')}"
                    )
                except Exception as exc:
                    answers.setdefault(name, {})[binding] = (
                        f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
                    )
        finally:
            await client.close()
    for name, by_binding in answers.items():
        assert by_binding["redis-streams"] == by_binding["JSONRPC"] == by_binding["HTTP+JSON"], (
            name,
            by_binding,
        )
    assert answers["card"]["redis-streams"] == "ok AgentCard echo"
    assert answers["create"]["redis-streams"].startswith("PushNotificationNotSupportedError")
