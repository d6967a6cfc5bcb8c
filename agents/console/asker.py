"""The Ask box's server side: send a question to the orchestrator with the a2a-sdk client (streaming, over
its JSONRPC HTTP interface) and hand back the task id as soon as the orchestrator has created the task.
The stream is read to its end in the background; the browser follows the task through its own feed
(the trace and the task events in Redis), so it sees the plan and every step as they happen.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import AgentCard, Role, SendMessageRequest
from anyio.abc import TaskGroup
from google.protobuf.json_format import ParseDict

from podium.bus.keys import Keys
from podium.registry.store import Registry

logger = logging.getLogger(__name__)

MAX_QUESTION = 20_000


class AskError(Exception):
    """The question could not be sent; the message says why, for the page."""

    status = 502


class Asker:
    """Sends questions to the orchestrator: the one named ``orchestrator`` in the registry, or ``url``."""

    def __init__(
        self, redis: Any, keys: Keys, *, url: str | None = None, a2a_token: str | None = None,
        agent: str = "orchestrator", first_event_s: float = 30.0,
    ) -> None:  # fmt: skip
        self.redis, self.keys, self.url, self.agent = redis, keys, url, agent
        self.first_event_s = first_event_s
        headers = {"Authorization": f"Bearer {a2a_token}"} if a2a_token else {}
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(600, connect=10), headers=headers, trust_env=False
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def card(self) -> AgentCard:
        """The orchestrator's card. Raises ``AskError`` when there is none to call."""
        if self.url:
            try:
                response = await self.http.get(f"{self.url.rstrip('/')}/.well-known/agent-card.json")
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise AskError(f"cannot fetch the orchestrator's card from {self.url}: {exc}") from exc
            return ParseDict(response.json(), AgentCard(), ignore_unknown_fields=True)
        card = await Registry(self.redis, self.keys).get(self.agent)
        if card is None:
            raise AskError(f"no {self.agent} is registered and alive: start one (podium up) and ask again")
        return card

    async def answer(
        self, task_id: str, context_id: str, decision: str, instruction: str, tg: TaskGroup
    ) -> str:
        """Answer an approval the orchestrator asks on ``task_id``, as ``podium ask`` does: text
        (``approve``, ``reject``, ``edit: <instruction>``) and a data part ``{"decision", "instruction"}``.
        Returns the task id once the orchestrator took the answer; raises ``AskError``."""
        text = f"edit: {instruction}" if decision == "edit" else decision
        message = new_text_message(text, role=Role.ROLE_USER, task_id=task_id, context_id=context_id)
        data: dict[str, Any] = {"decision": decision}
        if decision == "edit":
            data["instruction"] = instruction
        message.parts.append(new_data_part(data))
        return await self._send(message, tg)

    async def ask(self, question: str, tg: TaskGroup) -> str:
        """Send ``question``; return the task id once the orchestrator created the task. The rest of the
        stream is read in ``tg``. Raises ``AskError``."""
        return await self._send(new_text_message(question, role=Role.ROLE_USER), tg)

    async def _send(self, message: Any, tg: TaskGroup) -> str:
        card = await self.card()
        factory = ClientFactory(
            ClientConfig(streaming=True, supported_protocol_bindings=["JSONRPC"], httpx_client=self.http)
        )
        try:
            client = factory.create(card)
        except Exception as exc:  # the SDK's errors for a card without a usable interface vary
            raise AskError(f"the {self.agent}'s card offers no JSONRPC interface: {exc}") from exc
        request = SendMessageRequest(message=message)
        created: anyio.Event = anyio.Event()
        found: dict[str, Any] = {}

        async def follow() -> None:
            try:
                async for response in client.send_message(request):
                    which = response.WhichOneof("payload")
                    task_id = getattr(getattr(response, which), "task_id", "") if which else ""
                    if which == "task":
                        task_id = response.task.id
                    if task_id and "id" not in found:
                        found["id"] = task_id
                        created.set()
            except Exception as exc:  # reported to the page if it is still waiting, logged either way
                logger.warning("ask: the stream from the %s ended with an error: %s", self.agent, exc)
                found.setdefault("error", f"{type(exc).__name__}: {exc}")
            finally:
                created.set()
                await client.close()

        tg.start_soon(follow)
        with anyio.move_on_after(self.first_event_s):
            await created.wait()
        if "id" in found:
            return str(found["id"])
        raise AskError(
            found.get("error") or f"the {self.agent} did not create a task within {self.first_event_s:g}s"
        )
