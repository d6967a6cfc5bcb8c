"""The bus binding's recovery promises, through the a2a-sdk client over ``redis-streams``.

An agent served in this process by the same parts ``podium agent`` uses (``AgentRequestHandler`` on a
``RedisTaskStore``, ``BusRequestServer`` behind a ``Consumer``), on a real redis-server. Its executor
reports the hop budget it was given and counts how often it ran for each task, so each test sees what the
binding passed on and whether the agent ran again:

- every hop takes one hop from the budget, and a request with none left is refused before the agent runs;
- a request whose deadline passed before an agent took it raises ``A2AClientTimeoutError`` in the caller;
- a request the bus redelivers whose task waits for input is answered with that task, not run again;
- the task store and a ``BusClient``'s reply stream carry on across a Redis restart;
- every A2A method works over the bus: streaming, subscribing, listing, cancelling, push configs and the
  extended card.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import anyio
import pytest
from a2a.client import ClientCallContext, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError, A2AClientTimeoutError
from a2a.helpers.proto_helpers import new_data_part, new_task_from_user_message, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.agent_execution.simple_request_context_builder import SimpleRequestContextBuilder
from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.tasks.inmemory_push_notification_config_store import InMemoryPushNotificationConfigStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import (
    JSON_RPC_ERROR_CODE_MAP,
    A2AError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    TaskNotFoundError,
)
from google.protobuf.json_format import MessageToDict

from podium.agents.host.handler import AgentRequestHandler, MessageIds
from podium.bus.a2a_client import BusClient
from podium.bus.a2a_server import BusRequestServer
from podium.bus.binding import bus_interface, error_from_payload, error_payload, parse_bus_url
from podium.bus.connection import connect
from podium.bus.consumer import Consumer
from podium.bus.envelope import Budget, Envelope, Kind
from podium.bus.errors import ConfigError
from podium.bus.keys import Keys
from podium.bus.streams import StreamBus
from podium.bus.task_store import RedisTaskEventStream, RedisTaskStore
from tests.agents.agent_procs import text_request
from tests.bus.helpers import running, until

pytestmark = pytest.mark.anyio

AGENT = "probe"


class Probe(AgentExecutor):
    """Answers with the hop budget it was given; a message saying "ask" waits for input instead, "wait"
    works until cancelled, "once" works forever the first time and finishes the second."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        self.runs[task.id] += 1
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        if context.get_user_input() == "ask":
            await updater.requires_input(new_text_message("which one?", context_id=task.context_id))
            return
        await updater.start_work()
        if context.get_user_input() == "wait" or (
            context.get_user_input() == "once" and self.runs[task.id] == 1
        ):
            await anyio.sleep_forever()  # until cancelled (or, "once", until its replica dies)
        budget = context.call_context.state.get("budget") if context.call_context else None
        hops = budget.hops if isinstance(budget, Budget) else None
        await updater.add_artifact([new_data_part({"hops": hops})], name="budget")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def _card(keys: Keys, description: str = "probe") -> AgentCard:
    return AgentCard(
        name=AGENT,
        description=description,
        version="1",
        supported_interfaces=[bus_interface(keys.namespace, AGENT)],
        capabilities=AgentCapabilities(streaming=True, push_notifications=True, extended_agent_card=True),
        default_input_modes=["text/plain"],
        default_output_modes=["application/json"],
    )


@asynccontextmanager
async def serving(
    redis: Any, keys: Keys, probe: Probe, grace: float = 5.0, **options: Any
) -> AsyncIterator[Consumer]:
    """The probe agent, served over the bus as ``podium agent`` serves one, for the block's duration."""
    store = RedisTaskStore(redis, keys, AGENT)
    handler = AgentRequestHandler(
        probe,
        store,
        _card(keys),
        agent=AGENT,
        event_stream=RedisTaskEventStream(redis, keys, AGENT, block_ms=100),
        push_config_store=InMemoryPushNotificationConfigStore(),
        extended_agent_card=_card(keys, "the extended card"),
        request_context_builder=SimpleRequestContextBuilder(
            task_id_generator=MessageIds(AGENT, "task"), context_id_generator=MessageIds(AGENT, "context")
        ),
    )
    bus = StreamBus(redis, keys)
    server = BusRequestServer(bus, handler, agent=AGENT, task_store=store)
    consumer = Consumer(bus, AGENT, server, consumer=f"c-{uuid.uuid4().hex[:6]}", block_ms=100, **options)
    try:
        async with running(consumer, grace=grace):
            yield consumer
    finally:  # as the runtime does: a task waiting for input keeps its producer and consumer until closed
        with anyio.CancelScope(shield=True):
            await handler.aclose()


@asynccontextmanager
async def calling(redis: Any, keys: Keys, streaming: bool = False) -> AsyncIterator[tuple[BusClient, Any]]:
    async with BusClient(redis, keys, sender="test", default_timeout=30) as bus_client:
        factory = ClientFactory(
            ClientConfig(streaming=streaming, supported_protocol_bindings=["redis-streams"])
        )
        bus_client.register(factory)
        client = factory.create(_card(keys))
        try:
            yield bus_client, client
        finally:
            await client.close()


async def _send(client: Any, request: SendMessageRequest, context: ClientCallContext | None = None) -> Task:
    with anyio.fail_after(30):
        events = [ev async for ev in client.send_message(request, context=context)]
    assert events and events[-1].HasField("task")
    return events[-1].task


def _hops(task: Task) -> Any:
    data = [p.data for a in task.artifacts for p in a.parts if p.HasField("data")]
    assert len(data) == 1
    return MessageToDict(data[0])["hops"]


async def test_every_hop_spends_one_and_none_left_is_refused(redis, keys: Keys) -> None:
    probe = Probe()
    async with serving(redis, keys, probe), calling(redis, keys) as (_, client):
        task = await _send(
            client, text_request("one hop"), ClientCallContext(state={"budget": Budget(hops=3)})
        )
        assert task.status.state == TaskState.TASK_STATE_COMPLETED and _hops(task) == 2
        task = await _send(
            client, text_request("last hop"), ClientCallContext(state={"budget": Budget(hops=1)})
        )
        assert _hops(task) == 0
        assert _hops(await _send(client, text_request("no budget"))) is None  # unlimited stays unlimited
        runs = sum(probe.runs.values())
        with pytest.raises(InvalidRequestError, match="hop budget exhausted"):
            await _send(
                client, text_request("no hop left"), ClientCallContext(state={"budget": Budget(hops=0)})
            )
        assert sum(probe.runs.values()) == runs  # refused before the agent ran


async def test_the_final_reply_acks_its_request_in_the_same_script(redis, keys: Keys, monkeypatch) -> None:
    """A unary call, an error and a stream: each request is acked by the script that writes its final reply,
    not by a later XACK of the consumer's (one command less per request); one with nowhere to reply is acked
    by the consumer, after its handler."""
    async with (
        serving(redis, keys, Probe()) as consumer,
        calling(redis, keys) as (_, client),
        calling(redis, keys, streaming=True) as (_, streaming),
    ):
        acked_later: list[str] = []
        monkeypatch.setattr(consumer._acks, "ack", acked_later.append)  # the consumer's own (batched) XACKs
        await _send(client, text_request("unary"))
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id="no such task"))
        async for _ in streaming.send_message(text_request("streamed")):
            pass
        assert acked_later == [] and consumer.acked == 3
        assert (await redis.xpending(keys.inbox(AGENT), AGENT))["pending"] == 0
        entry = await StreamBus(redis, keys).publish(
            keys.inbox(AGENT), Envelope(method="GetTask", payload={"id": "x"})
        )
        await until(lambda: acked_later == [entry], what="the consumer's ack of the request without a reply")


async def test_a_request_expired_before_an_agent_took_it_times_out_in_the_caller(redis, keys: Keys) -> None:
    probe = Probe()
    async with serving(redis, keys, probe), calling(redis, keys) as (_, client):
        past = ClientCallContext(state={"budget": Budget(deadline=time.time() - 1)}, timeout=30)
        with anyio.fail_after(20), pytest.raises(A2AClientTimeoutError, match="deadline expired"):
            await _send(client, text_request("too late"), past)
        assert not probe.runs


async def test_a_redelivered_request_whose_task_waits_for_input_is_answered_not_run_again(
    redis, keys: Keys
) -> None:
    probe = Probe()
    request = text_request("ask")
    async with calling(redis, keys) as (bus_client, client):
        async with serving(redis, keys, probe):
            first = await _send(client, request)
        assert first.status.state == TaskState.TASK_STATE_INPUT_REQUIRED and probe.runs[first.id] == 1
        # The same request again, taken by a replica that dies before answering: it stays pending.
        inbox = keys.inbox(AGENT)
        env = Envelope(
            method="SendMessage",
            payload=MessageToDict(request),
            reply_to=bus_client.reply_to,
            deadline=time.time() + 60,
        )
        await StreamBus(redis, keys).publish(inbox, env)
        taken = await redis.xreadgroup(AGENT, "dead-replica", {inbox: ">"}, count=1)
        assert taken and taken[0][1]
        replies: list[Envelope] = []

        async def answered() -> bool:
            for _, fields in await redis.xrange(bus_client.reply_to):
                reply = Envelope.decode(fields[b"e"])
                if reply.correlation_id == env.id:
                    replies.append(reply)
            return bool(replies)

        async with serving(redis, keys, probe, claim_idle_ms=50):
            await until(answered, within=20, what="the redelivered request's answer")
    answer = replies[0]
    assert answer.kind == Kind.RESPONSE
    assert answer.payload["task"]["id"] == first.id
    assert answer.payload["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert "contextId" in answer.payload["task"]  # protobuf JSON names, as over JSON-RPC
    assert probe.runs[first.id] == 1  # answered from the store: the agent did not run again


async def test_a_request_whose_replica_died_mid_task_is_continued_by_another(redis, keys: Keys) -> None:
    probe = Probe()
    async with calling(redis, keys) as (bus_client, _):
        env = Envelope(
            method="SendMessage", payload=MessageToDict(text_request("once")), deadline=time.time() + 60
        )

        async def working() -> bool:  # started, and its working status stored (not only enqueued)
            if sum(probe.runs.values()) != 1:
                return False
            stored = await RedisTaskStore(redis, keys, AGENT).get(next(iter(probe.runs)), ServerCallContext())
            return stored is not None and stored.task.status.state == TaskState.TASK_STATE_WORKING

        async with serving(redis, keys, probe, grace=0.05):  # takes it, then dies without answering
            env.reply_to = bus_client.reply_to
            await StreamBus(redis, keys).publish(keys.inbox(AGENT), env)
            await until(working, within=20, what="the first replica to start the task")
        [task_id] = probe.runs
        stored = await RedisTaskStore(redis, keys, AGENT).get(task_id, ServerCallContext())
        assert stored is not None and stored.task.status.state == TaskState.TASK_STATE_WORKING
        answers: list[Envelope] = []

        async def answered() -> bool:
            for _, fields in await redis.xrange(bus_client.reply_to):
                reply = Envelope.decode(fields[b"e"])
                if reply.correlation_id == env.id:
                    answers.append(reply)
            return bool(answers)

        async with serving(redis, keys, probe, claim_idle_ms=50):  # claims it: a redelivery
            await until(answered, within=15, what="the other replica to finish the task")
    assert answers[0].kind == Kind.RESPONSE
    assert answers[0].payload["task"]["id"] == task_id
    assert answers[0].payload["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert probe.runs[task_id] == 2  # continued on the same task, not started as a new one


async def test_callers_racing_to_a_fresh_clients_first_call_share_one_reply_reader(redis, keys: Keys) -> None:
    """Fifty first calls at once on a BusClient nobody started: one reply reader (one blocking connection)
    serves them all, not one each (which would take a pool connection apiece: chaos's 100 callers ran the
    pool dry)."""
    probe = Probe()
    bus_client = BusClient(redis, keys, sender="test", default_timeout=30)
    try:
        async with serving(redis, keys, probe):
            inbox = keys.inbox(AGENT)
            replies = await asyncio.gather(
                *(bus_client.unary(inbox, "SendMessage", text_request(f"hi {i}"), None) for i in range(50))
            )
            assert all(r["task"]["status"]["state"] == "TASK_STATE_COMPLETED" for r in replies)
            readers = [
                t for t in asyncio.all_tasks() if t.get_name() == f"podium-replies-{bus_client.client_id}"
            ]
            assert len(readers) == 1
    finally:
        await bus_client.close()


async def test_task_store_and_reply_stream_across_a_redis_restart(killable_redis, keys: Keys) -> None:
    redis = connect(killable_redis.url)
    probe = Probe()
    try:
        async with serving(redis, keys, probe), calling(redis, keys) as (_, client):
            before = await _send(client, text_request("before"))
            killable_redis.restart()  # append-only, fsync always: the task survives
            after = await _send(client, text_request("after"))  # same BusClient, same reply stream
            assert after.status.state == TaskState.TASK_STATE_COMPLETED
            with anyio.fail_after(30):
                again = await client.get_task(GetTaskRequest(id=before.id))
            assert again.status.state == TaskState.TASK_STATE_COMPLETED and again.artifacts
            assert probe.runs == Counter({before.id: 1, after.id: 1})
    finally:
        await redis.aclose()


async def test_every_a2a_method_over_the_bus(redis, keys: Keys) -> None:
    async with serving(redis, keys, Probe()), calling(redis, keys, streaming=True) as (_, client):
        with anyio.fail_after(30):
            events = [ev async for ev in client.send_message(text_request("streamed"))]
            kinds = [ev.WhichOneof("payload") for ev in events]
            assert kinds[0] == "task" and "status_update" in kinds and "artifact_update" in kinds
            done = events[-1].status_update if kinds[-1] == "status_update" else events[-1].task
            assert done.status.state == TaskState.TASK_STATE_COMPLETED
            streamed = done.task_id if kinds[-1] == "status_update" else done.id

            async with aclosing(client.send_message(text_request("wait"))) as stream:
                async for ev in stream:  # the task, then its events until it ends: take the task
                    waiting = ev.task.id
                    break
            listed = await client.list_tasks(ListTasksRequest())
            assert {t.id for t in listed.tasks} == {streamed, waiting} and listed.total_size == 2
            assert (
                await client.get_task(GetTaskRequest(id=streamed))
            ).status.state == TaskState.TASK_STATE_COMPLETED

            seen: list[Any] = []

            async def subscribe() -> None:
                async for ev in client.subscribe(SubscribeToTaskRequest(id=waiting)):
                    seen.append(ev)

            async with anyio.create_task_group() as tg:
                tg.start_soon(subscribe)
                while (await client.get_task(GetTaskRequest(id=waiting))).status.state != TaskState.TASK_STATE_WORKING:  # noqa: ASYNC110  # fmt: skip
                    await anyio.sleep(0.02)
                await anyio.sleep(0.2)  # let the subscription attach; the final state is checked either way
                cancelled = await client.cancel_task(CancelTaskRequest(id=waiting))
                assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
            states = [
                ev.status_update.status.state if ev.HasField("status_update") else ev.task.status.state
                for ev in seen
                if ev.HasField("status_update") or ev.HasField("task")
            ]
            assert states and states[-1] == TaskState.TASK_STATE_CANCELED

            config = TaskPushNotificationConfig(task_id=streamed, id="p1", url="https://example.org/hook")
            created = await client.create_task_push_notification_config(config)
            assert (created.task_id, created.id, created.url) == (streamed, "p1", "https://example.org/hook")
            got = await client.get_task_push_notification_config(
                GetTaskPushNotificationConfigRequest(task_id=streamed, id="p1")
            )
            assert got.url == "https://example.org/hook"
            listed_configs = await client.list_task_push_notification_configs(
                ListTaskPushNotificationConfigsRequest(task_id=streamed)
            )
            assert [c.id for c in listed_configs.configs] == ["p1"]
            await client.delete_task_push_notification_config(
                DeleteTaskPushNotificationConfigRequest(task_id=streamed, id="p1")
            )
            listed_configs = await client.list_task_push_notification_configs(
                ListTaskPushNotificationConfigsRequest(task_id=streamed)
            )
            assert list(listed_configs.configs) == []
            extended = await client.get_extended_agent_card(GetExtendedAgentCardRequest())
            assert extended.description == "the extended card"


async def _raw_answer(redis: Any, keys: Keys, reply_to: str, env: Envelope) -> Envelope:
    """Publish ``env`` to the probe's inbox as it stands and wait for its one answer."""
    env.reply_to = reply_to
    await StreamBus(redis, keys).publish(keys.inbox(AGENT), env)
    found: list[Envelope] = []

    async def answered() -> bool:
        for _, fields in await redis.xrange(reply_to):
            reply = Envelope.decode(fields[b"e"])
            if reply.correlation_id == env.id:
                found.append(reply)
        return bool(found)

    await until(answered, within=20, what=f"an answer to {env.method}")
    return found[0]


async def test_requests_the_agent_cannot_take_get_the_a2a_error_that_names_why(redis, keys: Keys) -> None:
    async with serving(redis, keys, Probe()), calling(redis, keys) as (bus_client, _):
        reply_to = bus_client.reply_to

        async def error_of(env: Envelope) -> tuple[int, str]:
            answer = await _raw_answer(redis, keys, reply_to, env)
            assert answer.kind == Kind.ERROR, answer
            return answer.payload["error"]["code"], answer.payload["error"]["message"]

        assert await error_of(Envelope(kind=Kind.EVENT, method="GetTask", payload={"id": "x"})) == (
            -32600,
            "expected a request envelope, got 'event'",
        )
        assert await error_of(Envelope(method="Teleport", payload={})) == (
            -32601,
            "Method 'Teleport' not found",
        )
        answer = await _raw_answer(
            redis, keys, reply_to, Envelope(method="GetTask", payload={"id": {"nested": "wrong"}})
        )
        assert (
            answer.payload["error"]["code"] == -32602
            and "id" in answer.payload["error"]["data"]["parseError"]
        )
        big = Envelope(method="SendMessage", payload=MessageToDict(text_request("x" * 1_100_000)))
        assert await error_of(big) == (-32600, "Payload too large")
        # A field this agent does not know yet (a newer client) is ignored, not refused.
        code, _ = await error_of(Envelope(method="GetTask", payload={"id": "nope", "futureField": 1}))
        assert code == -32001  # task not found: the request itself was understood


async def test_an_error_crosses_the_bus_with_its_class_message_and_data(redis, keys: Keys) -> None:
    """A bad message gets invalid params naming the field, data included, as over HTTP."""
    bad = text_request("")
    async with serving(redis, keys, Probe()), calling(redis, keys) as (_, client):
        with anyio.fail_after(30), pytest.raises(InvalidParamsError) as caught:
            await _send(client, bad)
    assert caught.value.message == "message.parts[0].text: a text part must not be empty"
    assert caught.value.data == {
        "errors": [{"field": "message.parts[0].text", "message": "a text part must not be empty"}]
    }


def test_every_a2a_error_and_the_bus_own_errors_round_trip() -> None:
    for cls in JSON_RPC_ERROR_CODE_MAP:
        back = error_from_payload(error_payload(cls(message="why", data={"field": "x"})))
        assert type(back) is cls and back.message == "why" and back.data == {"field": "x"}
        assert error_payload(cls(message="why"))["error"] == {
            "code": JSON_RPC_ERROR_CODE_MAP[cls],
            "message": "why",
        }

    class Unmapped(A2AError):
        pass

    assert error_payload(Unmapped(message="odd"))["error"]["code"] == JSON_RPC_ERROR_CODE_MAP[InternalError]
    timeout = error_from_payload({"error": {"code": "DEADLINE_EXPIRED"}})
    assert isinstance(timeout, A2AClientTimeoutError)
    assert str(timeout) == "deadline expired before the agent took the request"
    assert str(error_from_payload({"error": {"code": "DEADLINE_EXPIRED", "message": "late"}})) == "late"
    dead = error_from_payload(
        {"error": {"code": "DEAD_LETTERED", "message": "boom", "data": {"attempts": 5}}}
    )
    assert type(dead) is InternalError and dead.message == "request dead-lettered: boom"
    assert dead.data == {"attempts": 5}
    unknown = error_from_payload({"error": {"code": 12345, "message": "what"}})
    assert type(unknown) is A2AClientError and str(unknown) == "A2A error 12345: what"
    malformed = error_from_payload({"oops": 1})
    assert type(malformed) is A2AClientError and "malformed error reply on the bus" in str(malformed)
    data_not_a_dict = error_from_payload({"error": {"code": -32602, "message": "m", "data": [1]}})
    assert type(data_not_a_dict) is InvalidParamsError and not data_not_a_dict.data


def test_the_bus_interface_and_its_url() -> None:
    assert bus_interface("ns", "echo") == AgentInterface(
        protocol_binding="redis-streams", url="redis-streams://ns/echo", protocol_version="1.0"
    )
    keys, agent = parse_bus_url("redis-streams://ns/echo/")
    assert (keys.namespace, agent, keys.inbox(agent)) == ("ns", "echo", "ns:inbox:{echo}")
    for bad in ("http://ns/echo", "redis-streams:///echo", "redis-streams://ns/", "redis-streams://ns"):
        with pytest.raises(ConfigError) as caught:
            parse_bus_url(bad)
        assert (
            str(caught.value)
            == f"not a redis-streams URL: {bad!r}; expected redis-streams://<namespace>/<agent>"
        )
    with pytest.raises(ConfigError) as caught:
        parse_bus_url("redis-streams://ns/bad name")
    assert str(caught.value).startswith("redis-streams URL 'redis-streams://ns/bad name': invalid agent name")
