"""The client side of the bus binding: an a2a-sdk ``ClientTransport`` that speaks A2A over Redis Streams.

One :class:`BusClient` per process owns a reply stream (``{ns}:reply:{<client id>}``) and the single
reader that routes replies to waiting calls by correlation id, trims what it has read and keeps the
stream's idle expiry fresh. Requests go through :class:`bus.backpressure.Inboxes`: new work
(``SendMessage``, ``SendStreamingMessage``) to a full inbox raises ``AgentOverloaded`` at once.
Register it with a ``ClientFactory`` and an ordinary a2a ``Client`` created from a card listing a
``redis-streams`` interface talks over the bus (``use_client_preference`` makes the factory follow the
client's order, not the card's)::

    async with BusClient(redis, keys) as bus_client:
        factory = ClientFactory(
            ClientConfig(supported_protocol_bindings=["redis-streams", "JSONRPC"], use_client_preference=True)
        )
        bus_client.register(factory)
        client = factory.create(card)
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from a2a.client.client import ClientCallContext, ClientConfig
from a2a.client.client_factory import ClientFactory
from a2a.client.errors import A2AClientError, A2AClientTimeoutError
from a2a.client.transports.base import ClientTransport
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
)
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as ProtoMessage
from redis.exceptions import OutOfMemoryError

from podium.bus.backpressure import DEFAULT_CAPACITY, AgentOverloaded, Inboxes
from podium.bus.binding import (
    ACCEPT,
    ACCEPT_PROTO,
    BINDING,
    decode_payload,
    error_from_payload,
    parse_bus_url,
)
from podium.bus.envelope import Budget, Envelope, Kind
from podium.bus.errors import BusClosed, ConfigError
from podium.bus.keys import Keys
from podium.bus.lane import reading
from podium.bus.proofs import MUTATING, prove
from podium.bus.retention import trim_through
from podium.bus.streams import StreamBus

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0
NEW_WORK = frozenset({"SendMessage", "SendStreamingMessage"})  # refused when the inbox is full
_TRIM_EVERY = 256  # replies read between trims of the reply stream (and at least once a second)


class BusClient:
    """The process's end of the bus for outgoing A2A calls: publishes requests, routes replies."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        *,
        client_id: str | None = None,
        sender: str = "",
        default_timeout: float = DEFAULT_TIMEOUT_S,
        reply_ttl_s: int = 3600,
        default_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.bus = StreamBus(redis, keys)
        self.inboxes = Inboxes(redis, default_capacity=default_capacity)
        self.keys = keys
        # Prefixed with the sender (agent) name, so a Redis ACL can give each agent its own reply streams.
        self.client_id = client_id or (f"{sender}.{uuid.uuid4().hex}" if sender else uuid.uuid4().hex)
        self.sender = sender
        self.reply_to = keys.reply(self.client_id)
        self.default_timeout = default_timeout
        self._reply_ttl_s = reply_ttl_s
        self._waiters: dict[str, asyncio.Queue[Envelope]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self._expiry_set = -1e9
        self._starting = asyncio.Lock()

    async def __aenter__(self) -> BusClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        async with self._starting:  # callers racing to the first call start one reader, not one each
            if self._reader is None:
                await self._start()

    async def _start(self) -> None:
        # Create the reply stream now so it carries an idle expiry from the start, even if this
        # process dies before its first refresh.
        await self.bus.publish(self.reply_to, Envelope(kind=Kind.END, sender=self.sender))
        await self._keep_reply_stream()
        self._reader = asyncio.create_task(self._read_replies(), name=f"podium-replies-{self.client_id}")

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
            self._reader = None
        try:
            await self.bus.redis.delete(self.reply_to)
        except Exception:  # closing must not fail because Redis is already gone
            logger.debug("could not delete reply stream %s", self.reply_to, exc_info=True)

    def register(self, factory: ClientFactory) -> None:
        """Let ``factory`` create clients for cards that list a ``redis-streams`` interface."""
        factory.register(BINDING, self.transport_for)

    def transport_for(self, card: AgentCard, url: str, config: ClientConfig) -> RedisStreamsTransport:
        del config
        keys, agent = parse_bus_url(url)
        return RedisStreamsTransport(self, keys.inbox(agent), card)

    async def _read_replies(self) -> None:
        async with reading(self.bus.redis) as reads:  # a connection of its own (bus.lane)
            await self._read_replies_with(reads)

    async def _read_replies_with(self, reads: Any) -> None:
        last = "0-0"  # the stream is this client's own: read it from the start so no early reply is missed
        backoff = 0.05
        untrimmed, trimmed_at = 0, time.monotonic()
        while not self._closed:
            try:
                await self._keep_reply_stream()
                if untrimmed >= _TRIM_EVERY or (untrimmed and time.monotonic() - trimmed_at >= 1):
                    # Only this reader reads the stream, so what it has read is all it may drop.
                    await trim_through(self.bus.redis, self.reply_to, last)
                    untrimmed, trimmed_at = 0, time.monotonic()
                entries = await self.bus.read(self.reply_to, last, count=256, block_ms=1000, client=reads)
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the reader must outlive Redis restarts; callers time out meanwhile
                logger.warning(
                    "reply reader for %s: Redis error (%s), retrying in %.2fs", self.reply_to, exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            untrimmed += len(entries)
            woken = False
            for entry_id, env in entries:
                last = entry_id
                if isinstance(env, Exception):
                    logger.warning("malformed reply %s on %s: %s", entry_id, self.reply_to, env)
                    continue
                queue = self._waiters.get(env.correlation_id or "")
                if queue is not None:
                    queue.put_nowait(env)
                    woken = True
            if woken:  # let the callers take their replies before this task sends its next read
                await asyncio.sleep(0)

    async def call(
        self,
        inbox: str,
        method: str,
        request: ProtoMessage,
        context: ClientCallContext | None,
        *,
        accept_proto: bool = False,
    ) -> AsyncGenerator[Envelope, None]:
        """Publish one request to the agent's ``inbox`` stream and yield its replies until the final one.

        With ``accept_proto`` the agent may answer in binary protobuf (``binding.decode_payload`` reads
        either form); without it every reply payload is protobuf JSON.

        Raises the A2A errors the agent answers with, ``AgentOverloaded`` when the inbox is full (new
        work only) or Redis is out of memory, ``A2AClientTimeoutError`` when no reply comes in time, and
        ``ConfigError`` when ``inbox`` is not an inbox key.
        """
        if self._closed:
            raise BusClosed()
        try:
            keys, agent = Keys.of_inbox(inbox)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        try:
            if self._reader is None:
                await self.start()
            await self._keep_reply_stream()
        except OutOfMemoryError as exc:
            raise AgentOverloaded.out_of_memory(agent) from exc
        timeout = (context.timeout if context and context.timeout else None) or self.default_timeout
        state = context.state if context else {}
        budget = state.get("budget")
        env = Envelope(
            method=method,
            payload=MessageToDict(request, preserving_proto_field_name=False),
            sender=self.sender,
            reply_to=self.reply_to,
            deadline=time.time() + timeout,
            traceparent=state.get("traceparent"),
            budget=budget if isinstance(budget, Budget) else Budget(),
            metadata={ACCEPT: ACCEPT_PROTO} if accept_proto else {},
        )
        queue: asyncio.Queue[Envelope] = asyncio.Queue()
        self._waiters[env.id] = queue
        try:
            if method in MUTATING:  # the agent acts on it only with this proof that we sent it (bus.proofs)
                await prove(self.bus.writes, keys, self.client_id, env)
            await self.inboxes.publish(keys, agent, env, check=method in NEW_WORK)
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                try:
                    # asyncio.timeout, not wait_for: wait_for wraps each get in a task of its own (3.11).
                    async with asyncio.timeout(max(remaining, 0)):
                        reply = await queue.get()
                except TimeoutError:
                    raise A2AClientTimeoutError(
                        f"no reply to {method} from {inbox} within {timeout:g}s"
                    ) from None
                if reply.kind == Kind.ERROR:
                    raise error_from_payload(reply.payload)
                if reply.kind == Kind.END:
                    return
                yield reply
                if reply.kind == Kind.RESPONSE:
                    return
        finally:
            self._waiters.pop(env.id, None)

    async def _keep_reply_stream(self) -> None:
        """Refresh the reply stream's idle expiry, at most once a minute (it is off the hot path); recreate
        the stream if it is gone (e.g. Redis restarted without persistence)."""
        now = time.monotonic()
        if now - self._expiry_set >= min(60.0, self._reply_ttl_s / 3):
            self._expiry_set = now
            if not await self.bus.redis.expire(self.reply_to, self._reply_ttl_s):
                await self.bus.publish(self.reply_to, Envelope(kind=Kind.END, sender=self.sender))
                await self.bus.redis.expire(self.reply_to, self._reply_ttl_s)

    async def unary(
        self,
        inbox: str,
        method: str,
        request: ProtoMessage,
        context: ClientCallContext | None,
        *,
        accept_proto: bool = False,
    ) -> dict[str, Any]:
        # Closed here, not left to the loop's async-generator finalizer: that hook schedules the close from a
        # thread-safe callback, one more wake-up (a write to the loop's self-pipe) on every call.
        async with aclosing(self.call(inbox, method, request, context, accept_proto=accept_proto)) as replies:
            async for reply in replies:
                return reply.payload
        raise A2AClientError(f"{method}: the agent ended the call without a reply")


class RedisStreamsTransport(ClientTransport):
    """A ``ClientTransport`` for one agent's inbox over a shared :class:`BusClient`."""

    def __init__(self, client: BusClient, inbox: str, card: AgentCard) -> None:
        self._client = client
        self._inbox = inbox
        self._card = card

    async def _unary(
        self, method: str, request: ProtoMessage, context: ClientCallContext | None, out: Any
    ) -> Any:
        payload = await self._client.unary(self._inbox, method, request, context, accept_proto=True)
        return decode_payload(payload, out)

    async def _events(
        self, method: str, request: ProtoMessage, context: ClientCallContext | None
    ) -> AsyncGenerator[StreamResponse, None]:
        async for reply in self._client.call(self._inbox, method, request, context, accept_proto=True):
            yield decode_payload(reply.payload, StreamResponse())

    async def send_message(
        self, request: SendMessageRequest, *, context: ClientCallContext | None = None
    ) -> SendMessageResponse:
        return await self._unary("SendMessage", request, context, SendMessageResponse())

    async def send_message_streaming(  # type: ignore[override]
        self, request: SendMessageRequest, *, context: ClientCallContext | None = None
    ) -> AsyncGenerator[StreamResponse, None]:
        async for event in self._events("SendStreamingMessage", request, context):
            yield event

    async def get_task(self, request: GetTaskRequest, *, context: ClientCallContext | None = None) -> Task:
        return await self._unary("GetTask", request, context, Task())

    async def list_tasks(
        self, request: ListTasksRequest, *, context: ClientCallContext | None = None
    ) -> ListTasksResponse:
        return await self._unary("ListTasks", request, context, ListTasksResponse())

    async def cancel_task(
        self, request: CancelTaskRequest, *, context: ClientCallContext | None = None
    ) -> Task:
        return await self._unary("CancelTask", request, context, Task())

    async def create_task_push_notification_config(
        self, request: TaskPushNotificationConfig, *, context: ClientCallContext | None = None
    ) -> TaskPushNotificationConfig:
        return await self._unary(
            "CreateTaskPushNotificationConfig", request, context, TaskPushNotificationConfig()
        )

    async def get_task_push_notification_config(
        self, request: GetTaskPushNotificationConfigRequest, *, context: ClientCallContext | None = None
    ) -> TaskPushNotificationConfig:
        return await self._unary(
            "GetTaskPushNotificationConfig", request, context, TaskPushNotificationConfig()
        )

    async def list_task_push_notification_configs(
        self, request: ListTaskPushNotificationConfigsRequest, *, context: ClientCallContext | None = None
    ) -> ListTaskPushNotificationConfigsResponse:
        return await self._unary(
            "ListTaskPushNotificationConfigs", request, context, ListTaskPushNotificationConfigsResponse()
        )

    async def delete_task_push_notification_config(
        self, request: DeleteTaskPushNotificationConfigRequest, *, context: ClientCallContext | None = None
    ) -> None:
        async for _ in self._client.call(self._inbox, "DeleteTaskPushNotificationConfig", request, context):
            return

    async def subscribe(  # type: ignore[override]
        self, request: SubscribeToTaskRequest, *, context: ClientCallContext | None = None
    ) -> AsyncGenerator[StreamResponse, None]:
        async for event in self._events("SubscribeToTask", request, context):
            yield event

    async def get_extended_agent_card(
        self, request: GetExtendedAgentCardRequest, *, context: ClientCallContext | None = None
    ) -> AgentCard:
        """The extended card, from the agent when its card says it has one; else the card we hold, as the
        a2a-sdk's HTTP transports answer."""
        if not self._card.capabilities.extended_agent_card:
            return self._card
        return await self._unary("GetExtendedAgentCard", request, context, AgentCard())

    async def close(self) -> None:
        """Nothing to release: the shared BusClient owns the reply stream."""
