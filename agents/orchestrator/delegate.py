"""One delegation over A2A: the ordinary a2a-sdk ``Client``, with Podium's bus transport registered and
preferred, so an agent whose card lists ``redis-streams`` is called over the bus and an outside agent
over its HTTP interface — the same code either way.

:class:`Delegator` sends one message to one agent and returns the agent's finished task as a
:class:`Reply`; it classifies failures (:class:`DelegationError` with ``transient``) and leaves
retries, fallback and breakers to :mod:`agents.orchestrator.dispatch`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.client.client import ClientCallContext
from a2a.client.errors import A2AClientError, A2AClientTimeoutError
from a2a.types.a2a_pb2 import AgentCard, GetTaskRequest, Message, SendMessageRequest, Task, TaskState
from a2a.utils.errors import A2AError, InternalError
from google.protobuf.json_format import MessageToDict

from podium.agents.orchestrator.errors import BudgetExceeded, DelegationError
from podium.bus.a2a_client import BusClient
from podium.bus.backoff import TRANSIENT
from podium.bus.backpressure import retry_after
from podium.bus.binding import BINDING
from podium.bus.envelope import Budget
from podium.bus.states import STOPPED

PREFERENCE = [BINDING, "JSONRPC", "HTTP+JSON"]
BUDGET_METADATA_KEY = "podium.budget"  # the budget over HTTP, in the A2A message metadata

# A2A errors that say the request itself is wrong: retrying it cannot help.
_PERMANENT = (
    "InvalidParamsError",
    "InvalidRequestError",
    "MethodNotFoundError",
    "UnsupportedOperationError",
    "ContentTypeNotSupportedError",
    "TaskNotFoundError",
    "TaskNotCancelableError",
    "ExtensionSupportRequiredError",
    "VersionNotSupportedError",
    "PushNotificationNotSupportedError",
)


@dataclass
class Reply:
    """An agent's finished task, reduced to what a plan reads: its text and its data."""

    agent: str
    binding: str
    task: Task
    text: str
    data: dict[str, Any]
    duration_ms: float

    @property
    def output(self) -> dict[str, Any]:
        """The data part, with the text as ``result`` when the agent gave no such field."""
        out = dict(self.data)
        out.setdefault("result", self.text)
        out.setdefault("text", self.text)
        return out


@dataclass
class Delegator:
    """Sends messages to agents over the binding their cards prefer (the bus first).

    ``bus`` is the process's one :class:`BusClient` (None: HTTP only). ``token`` is sent only to
    Podium's own agents (cards the registry did not get from outside), never to outside agents.
    """

    bus: BusClient | None
    token: str | None = None
    poll_interval: float = 0.25
    _http: httpx.AsyncClient = field(init=False)
    _http_own: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        self._http = httpx.AsyncClient(timeout=60, limits=limits, trust_env=False)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http_own = httpx.AsyncClient(timeout=60, limits=limits, trust_env=False, headers=headers)
        bindings = PREFERENCE if self.bus is not None else PREFERENCE[1:]
        self._factories = {}
        for own, http in ((True, self._http_own), (False, self._http)):
            factory = ClientFactory(
                ClientConfig(
                    streaming=False,
                    supported_protocol_bindings=list(bindings),
                    use_client_preference=True,
                    httpx_client=http,
                )
            )
            if self.bus is not None:
                self.bus.register(factory)
            self._factories[own] = factory

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._http_own.aclose()

    def binding_for(self, card: AgentCard) -> str:
        """The binding a call to ``card`` uses: the first of our preferences the card lists."""
        offered = {i.protocol_binding for i in card.supported_interfaces}
        for binding in PREFERENCE if self.bus is not None else PREFERENCE[1:]:
            if binding in offered:
                return binding
        raise DelegationError(
            f"agent {card.name!r} offers no binding Podium speaks ({', '.join(sorted(offered)) or 'none'})"
        )

    async def send(
        self,
        agent: str,
        card: AgentCard,
        message: Message,
        *,
        own: bool,
        limit_s: float,
        budget: Budget | None = None,
        traceparent: str | None = None,
        token: str | None = None,
    ) -> Reply:
        """Send ``message`` to ``agent`` and wait (at most ``limit_s`` s) for its task to stop. ``token``:
        an outside agent's own bearer token (Podium's token goes only to its own agents).

        Returns the reply of a completed task. Raises ``DelegationError``: transient for timeouts,
        unreachable agents, internal errors and failed tasks; permanent for invalid requests, rejected,
        cancelled and input-requiring tasks (``suggested_agent`` set when a rejection names one).
        """
        binding = self.binding_for(card)
        state: dict[str, Any] = {}
        if budget is not None:
            state["budget"] = budget
            message.metadata.update({BUDGET_METADATA_KEY: budget.model_dump(exclude_none=True)})
        headers: dict[str, str] | None = None
        if traceparent:
            state["traceparent"] = traceparent  # the bus envelope carries it
            headers = {"traceparent": traceparent}  # and HTTP, as the W3C header
        if token and not own:
            headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        context = ClientCallContext(state=state, timeout=limit_s, service_parameters=headers)
        client = self._factories[own].create(card)
        started = time.monotonic()
        try:
            with anyio.fail_after(limit_s):
                task = await self._send(client, message, context)
                while task.status.state not in STOPPED:
                    await anyio.sleep(self.poll_interval)
                    task = await client.get_task(GetTaskRequest(id=task.id), context=context)
        except TimeoutError:
            raise DelegationError(
                f"{agent} did not answer within {limit_s:g}s", transient=True, agent=agent
            ) from None
        except A2AClientTimeoutError as exc:
            raise DelegationError(f"{agent} timed out: {exc}", transient=True, agent=agent) from exc
        except A2AError as exc:
            name = type(exc).__name__
            if "budget exhausted" in str(getattr(exc, "message", None) or exc):
                raise BudgetExceeded(f"{agent} refused the request: {getattr(exc, 'message', exc)}") from exc
            transient = name not in _PERMANENT
            text = getattr(exc, "message", None) or str(exc) or name
            raise DelegationError(
                f"{agent} answered {name}: {text}",
                transient=transient,
                agent=agent,
                retry_after=retry_after(exc),
                answered=not isinstance(exc, A2AClientError),  # a client error: no answer came
            ) from exc
        except TRANSIENT:
            raise  # our own Redis is away: not the agent's failure; the session waits for it
        except (httpx.HTTPError, OSError) as exc:
            raise DelegationError(f"{agent} is unreachable: {exc}", transient=True, agent=agent) from exc
        finally:
            await client.close()
        took = (time.monotonic() - started) * 1000
        text, data = _content(task)
        state_name = TaskState.Name(task.status.state).removeprefix("TASK_STATE_").lower()
        if task.status.state == TaskState.TASK_STATE_COMPLETED:
            return Reply(agent, binding, task, text, data, took)
        reason = _status_text(task) or text or f"the task ended {state_name}"
        if task.status.state == TaskState.TASK_STATE_FAILED:
            said = reason if reason.lower().startswith(agent.lower()) else f"{agent} failed: {reason}"
            raise DelegationError(said, transient=True, agent=agent, answered=True)
        suggested = None
        if task.status.state == TaskState.TASK_STATE_REJECTED:
            status_data = _status_data(task)
            suggested = status_data.get("suggestedAgent") or status_data.get("suggested_agent")
        said = (
            reason if reason.lower().startswith(agent.lower()) else f"{agent} {state_name} the task: {reason}"
        )
        raise DelegationError(said, agent=agent, suggested_agent=suggested or None, answered=True)

    async def _send(self, client: Any, message: Message, context: ClientCallContext) -> Task:
        async for event in client.send_message(SendMessageRequest(message=message), context=context):
            if event.HasField("task"):
                return event.task
            if event.HasField("message"):  # a message-only agent: its reply is the whole answer
                task = Task(id=message.message_id, context_id=message.context_id)
                task.status.state = TaskState.TASK_STATE_COMPLETED
                task.status.message.CopyFrom(event.message)
                return task
        raise InternalError(message="the agent ended the call without a task or a message")


def _parts(parts: Any) -> tuple[list[str], dict[str, Any]]:
    texts: list[str] = []
    data: dict[str, Any] = {}
    for part in parts:
        if part.HasField("text"):
            texts.append(part.text)
        elif part.HasField("data"):
            value = MessageToDict(part.data)
            if isinstance(value, dict):
                for key, item in value.items():
                    data.setdefault(key, item)
    return texts, data


def _content(task: Task) -> tuple[str, dict[str, Any]]:
    """The task's artifacts as one text and one merged data dict (first value of a key wins)."""
    texts: list[str] = []
    data: dict[str, Any] = {}
    for artifact in task.artifacts:
        t, d = _parts(artifact.parts)
        texts += t
        for key, value in d.items():
            data.setdefault(key, value)
    if not texts and not data and task.status.HasField("message"):
        texts, data = _parts(task.status.message.parts)
    return "\n".join(t for t in texts if t).strip(), data


def _status_text(task: Task) -> str:
    if not task.status.HasField("message"):
        return ""
    return " ".join(_parts(task.status.message.parts)[0]).strip()


def _status_data(task: Task) -> dict[str, Any]:
    if not task.status.HasField("message"):
        return {}
    return _parts(task.status.message.parts)[1]
