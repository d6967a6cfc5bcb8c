"""Calling an agent from your own code: an ordinary a2a-sdk ``Client``, over the bus or over HTTP.

``open_client`` gives a client for one agent, found either by its A2A URL (the card is fetched from
``/.well-known/agent-card.json``; calls go over JSON-RPC, with a bearer token when given) or by its name in
the registry of a Podium deployment (calls go over the ``redis-streams`` binding when the card lists it,
else over its HTTP interface). ``ask`` sends one text message and waits for the finished task::

    async with podium.open_client("http://127.0.0.1:8700") as client:
        task = await podium.ask(client, "What is 15% of 240?")
        print(podium.task_text(task))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.client import Client
from a2a.helpers.proto_helpers import get_artifact_text, new_text_message
from a2a.types.a2a_pb2 import AgentCard, Role, SendMessageRequest, Task, TaskState

from podium.bus.binding import BINDING
from podium.bus.keys import Keys

HTTP_BINDINGS = ["JSONRPC", "HTTP+JSON"]
DEFAULT_TIMEOUT_S = 300.0


class AgentNotFoundError(LookupError):
    """No agent of that name is registered (alive) in the deployment the client looked in."""


@asynccontextmanager
async def open_client(
    target: str | AgentCard,
    *,
    redis: Any = None,
    keys: Keys | None = None,
    token: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    streaming: bool = True,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[Client]:
    """An a2a ``Client`` for ``target``: an ``http(s)://`` URL, an agent's name (looked up in the registry
    on ``redis``, default ``REDIS_URL``, namespace ``keys`` or ``PODIUM_NAMESPACE``), or a card.

    With ``redis`` (or a name) the bus is preferred whenever the card lists it. ``token`` is sent as a
    bearer token on HTTP. Raises ``AgentNotFoundError`` for a name nobody registered, and what the
    a2a-sdk raises for a URL that serves no card (``A2AClientError``/``httpx.HTTPError``).
    """
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=timeout_s, headers={**(headers or {}), **auth})
        )
        bus_wanted = redis is not None or (isinstance(target, str) and "://" not in target)
        if isinstance(target, AgentCard):
            card = target
        elif "://" in target:
            card = await A2ACardResolver(http, target.rstrip("/")).get_agent_card()
        else:
            redis, keys = await _redis(stack, redis, keys)
            card = await _registered(redis, keys, target)
        factory = ClientFactory(
            ClientConfig(
                streaming=streaming,
                httpx_client=http,
                supported_protocol_bindings=[*([BINDING] if bus_wanted else []), *HTTP_BINDINGS],
                use_client_preference=True,
            )
        )
        if bus_wanted and any(i.protocol_binding == BINDING for i in card.supported_interfaces):
            from podium.bus.a2a_client import BusClient

            redis, keys = await _redis(stack, redis, keys)
            bus = await stack.enter_async_context(BusClient(redis, keys, default_timeout=timeout_s))
            bus.register(factory)
        client = factory.create(card)
        try:
            yield client
        finally:
            await client.close()


async def ask(client: Client, text: str, **metadata: Any) -> Task:
    """Send ``text`` as one user message and return the task once it stops (finished, failed, or waiting
    for input), following its stream of updates."""
    message = new_text_message(text, role=Role.ROLE_USER)
    if metadata:
        message.metadata.update(metadata)
    task = Task()
    async for event in client.send_message(SendMessageRequest(message=message)):
        if event.HasField("task"):
            task.CopyFrom(event.task)
        elif event.HasField("status_update"):
            task.status.CopyFrom(event.status_update.status)
        elif event.HasField("artifact_update"):
            task.artifacts.append(event.artifact_update.artifact)
        elif event.HasField("message"):
            task.status.state = TaskState.TASK_STATE_COMPLETED
            task.status.message.CopyFrom(event.message)
    return task


def task_text(task: Task) -> str:
    """The text of a task's artifacts (the answer), one artifact a paragraph."""
    return "\n\n".join(text for artifact in task.artifacts if (text := get_artifact_text(artifact)))


async def _redis(stack: AsyncExitStack, redis: Any, keys: Keys | None) -> tuple[Any, Keys]:
    if redis is None:
        from podium.bus.connection import connect

        redis = connect()
        stack.push_async_callback(redis.aclose)
    return redis, keys or Keys.from_env()


async def _registered(redis: Any, keys: Keys, name: str) -> AgentCard:
    from podium.registry.store import Registry

    entry = await Registry(redis, keys).entry(name)
    if entry is None:
        raise AgentNotFoundError(
            f"no agent {name!r} is registered in namespace {keys.namespace!r}: is `podium up` running on "
            "the same REDIS_URL and PODIUM_NAMESPACE?"
        )
    return entry.card
