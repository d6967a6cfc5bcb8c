"""The server side of the bus binding: a consumer handler that feeds an agent's A2A request handler.

It is a thin adapter, like the HTTP routes: parse the A2A request from the envelope, call the same
request handler the HTTP side uses, and write the reply (or each streamed event) to the caller's reply
stream. The final reply acks the request in the same script (``StreamBus.reply(ack=...)``; on Redis
Cluster, where the two streams sit in different slots, the consumer acks it after this returns), so a
request is never acknowledged without its reply.

Redelivery is idempotent through the request handler (``agents.handler``): a task's id is derived from
its message id, so a request redelivered after a replica died finds its task. A finished task is
answered from the store without running the agent again; an unfinished one is continued (the context
says the request was delivered before, under ``state["redelivered"]``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types.a2a_pb2 import (
    Message,
    SendMessageResponse,
    StreamResponse,
    Task,
)
from a2a.utils.errors import (
    A2AError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    TaskNotFoundError,
)
from a2a.utils.proto_utils import to_stream_response
from google.protobuf.json_format import ParseDict, ParseError
from google.protobuf.message import Message as ProtoMessage

from podium.bus.binding import ACCEPT, ACCEPT_PROTO, METHODS, STREAMING, encode_payload, error_payload
from podium.bus.consumer import Delivery
from podium.bus.envelope import BudgetExhausted, Envelope, Kind
from podium.bus.owners import BusCaller, bus_owner
from podium.bus.proofs import MUTATING, proven
from podium.bus.streams import StreamBus
from podium.bus.task_store import RedisTaskStore

logger = logging.getLogger(__name__)


def accepts_proto(env: Envelope) -> bool:
    """True when the caller takes replies in binary protobuf (``binding.ACCEPT``)."""
    return env.metadata.get(ACCEPT) == ACCEPT_PROTO


class BusRequestServer:
    """A ``bus.consumer.Handler`` that serves A2A requests arriving in an agent's inbox."""

    def __init__(
        self,
        bus: StreamBus,
        handler: RequestHandler,
        *,
        agent: str = "",
        task_store: RedisTaskStore | None = None,
        max_payload_bytes: int = 1_000_000,
    ) -> None:
        self._bus = bus
        self._handler = handler
        self._agent = agent
        self._store = task_store
        self._max_payload = max_payload_bytes

    async def __call__(self, env: Envelope, delivery: Delivery) -> None:
        try:
            if env.kind != Kind.REQUEST:
                raise InvalidRequestError(message=f"expected a request envelope, got {env.kind.value!r}")
            model = METHODS.get(env.method)
            if model is None:
                raise MethodNotFoundError(message=f"Method {env.method!r} not found")
            if self._max_payload and delivery.size > self._max_payload:
                raise InvalidRequestError(message="Payload too large")
            try:
                request = ParseDict(env.payload, model(), ignore_unknown_fields=True)
            except (ParseError, TypeError, ValueError) as exc:
                raise InvalidParamsError(data={"parseError": str(exc)}) from exc
            if env.method in MUTATING and not await proven(self._bus.redis, self._bus.keys, env):
                # sent by someone other than the caller its reply stream names: not that caller's task
                raise TaskNotFoundError
            try:
                budget = env.budget.next_hop()
            except BudgetExhausted as exc:
                raise InvalidRequestError(message="hop budget exhausted") from exc
            context = ServerCallContext(
                user=BusCaller(bus_owner(env.reply_to or "")),
                state={
                    "method": env.method,
                    "envelope_id": env.id,
                    "budget": budget,
                    "sender": env.sender,
                    "redelivered": delivery.deliveries > 1,
                },
                tenant=getattr(request, "tenant", ""),
            )
            if env.traceparent:
                context.state["traceparent"] = env.traceparent
            if env.method in STREAMING:
                await self._stream(env, request, context, delivery)
            else:
                result = await self._unary(env, request, context, delivery)
                await self._reply(env, Kind.RESPONSE, result, ack=delivery)
        except A2AError as exc:
            await self._reply(env, Kind.ERROR, error_payload(exc), ack=delivery)

    async def _unary(
        self, env: Envelope, request: Any, context: ServerCallContext, delivery: Delivery
    ) -> dict[str, Any] | None:
        h = self._handler
        binary = accepts_proto(env)  # the caller takes the reply in binary protobuf

        def dump(message: ProtoMessage) -> dict[str, Any]:
            return encode_payload(message, binary)

        match env.method:
            case "SendMessage":
                result: Any = await h.on_message_send(request, context)
                if isinstance(result, Task):
                    return dump(SendMessageResponse(task=result))
                if isinstance(result, Message):
                    return dump(SendMessageResponse(message=result))
                return dump(result)
            case "GetTask":
                return dump(await h.on_get_task(request, context))
            case "ListTasks":
                return dump(await h.on_list_tasks(request, context))
            case "CancelTask":
                return dump(await h.on_cancel_task(request, context))
            case "CreateTaskPushNotificationConfig":
                return dump(await h.on_create_task_push_notification_config(request, context))
            case "GetTaskPushNotificationConfig":
                return dump(await h.on_get_task_push_notification_config(request, context))
            case "ListTaskPushNotificationConfigs":
                return dump(await h.on_list_task_push_notification_configs(request, context))
            case "DeleteTaskPushNotificationConfig":
                await h.on_delete_task_push_notification_config(request, context)
                return None
            case "GetExtendedAgentCard":
                return dump(await h.on_get_extended_agent_card(request, context))
        raise MethodNotFoundError(message=f"Method {env.method!r} not found")

    async def _stream(
        self, env: Envelope, request: Any, context: ServerCallContext, delivery: Delivery
    ) -> None:
        events: AsyncIterator[Any]
        if env.method == "SendStreamingMessage":
            events = self._handler.on_message_send_stream(request, context)
        else:
            events = self._handler.on_subscribe_to_task(request, context)
        binary = accepts_proto(env)
        async for event in events:
            await self._reply(env, Kind.EVENT, encode_payload(_as_stream_response(event), binary))
        await self._reply(env, Kind.END, {}, ack=delivery)

    async def _reply(
        self, env: Envelope, kind: Kind, payload: dict[str, Any] | None, ack: Delivery | None = None
    ) -> None:
        """Write a reply; the last one (``ack``: its delivery) acks the request in the same script."""
        if not env.reply_to:
            return
        await self._bus.reply(env.reply_to, env.reply(kind, payload or {}, sender=self._agent), ack=ack)


def _as_stream_response(event: Any) -> StreamResponse:
    if isinstance(event, StreamResponse):
        return event
    return to_stream_response(event)
