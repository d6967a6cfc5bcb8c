"""What every specialist does around its own skill: read the request, refuse work that is not its own,
answer offline or with the engine, publish one artifact, and share results on the blackboard.

A subclass sets ``name``, ``skill``, ``input_model`` and ``engine_tools`` and implements
:meth:`Specialist.offline` and :meth:`Specialist.with_engine`; either may raise :class:`Rejected`.

Effects are idempotent per task id, because the bus delivers at least once and a replica may run a
task again after another died: the artifact id is derived from the task id (a re-run replaces it), the
blackboard note is written with ``write`` (replace, by key), and an append-only board gets at most one
entry per task (it is read first and skipped when it already holds this task's marker).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import anyio
from a2a.helpers.proto_helpers import new_data_part, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import Message, Task, TaskState, TaskStatus
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, ValidationError

from podium.agents.host.context import AgentContext
from podium.agents.host.tools import ToolBox, ToolResult, ToolSpec
from podium.agents.llm import LLMError, Usage
from podium.agents.specialists.models import SpecialistInput, SpecialistOutput
from podium.agents.text.routing import Route, classify, misrouted
from podium.bus.envelope import Budget

logger = logging.getLogger(__name__)

BOARD_CONTEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
MAX_BOARD_NOTE = 16_000


class Rejected(Exception):
    """The task is not this specialist's to do (or holds nothing it can work on)."""

    def __init__(self, reason: str, agent: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.agent = agent


class Failed(Exception):
    """The task could not be done for a reason outside it (a tool server down); it may work later."""


@dataclass(slots=True)
class Call:
    name: str
    arguments: dict[str, Any]
    result: ToolResult


class Recorder:
    """A :class:`ToolBox` over the agent's mounted tools that remembers every call and its result;
    :meth:`only` gives the view of it a tool loop may use."""

    def __init__(self, tools: ToolBox, prefixes: tuple[str, ...] = (), deadline: float | None = None) -> None:
        self.tools = tools
        self.prefixes = prefixes
        self.deadline = deadline  # unix seconds: the request's budget deadline, if it has one
        self.calls: list[Call] = []

    def only(self, prefixes: tuple[str, ...]) -> Recorder:
        view = Recorder(self.tools, prefixes, self.deadline)
        view.calls = self.calls  # one record, whoever calls
        return view

    def specs(self) -> list[ToolSpec]:
        return [s for s in self.tools.specs() if not self.prefixes or s.name.startswith(self.prefixes)]

    def has(self, name: str) -> bool:
        return any(s.name == name for s in self.tools.specs())

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        if self.prefixes and not name.startswith(self.prefixes):
            return ToolResult(text=f"tool {name!r} is not available here", is_error=True)
        left = None if self.deadline is None else self.deadline - time.time()
        if left is not None and left <= 0:
            result = ToolResult(
                text=f"{name} was not called: the request's deadline has passed", is_error=True
            )
        else:
            # a tool call gets at most what is left of the request's deadline (its own timeout too)
            with anyio.move_on_after(left) as scope:
                result = await self.tools.call(name, arguments)
            if scope.cancelled_caught:
                result = ToolResult(text=f"{name} stopped: the request's deadline passed", is_error=True)
        self.calls.append(Call(name, dict(arguments), result))
        return result

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.calls]


@dataclass(slots=True)
class Job:
    """One task as a specialist sees it."""

    task_id: str
    context_id: str
    text: str
    data: dict[str, Any]
    input: Any  # the specialist's input model
    route: Route
    tools: Recorder
    board: dict[str, str] = field(default_factory=dict)  # blackboard notes read, by key
    warnings: list[str] = field(default_factory=list)
    budget: Budget | None = None  # what the request may still spend (tokens, deadline, spend)
    usage: Usage = field(default_factory=Usage)  # what this task's model calls spent
    price: tuple[float, float] | None = None  # the engine's USD per million tokens, for a spend budget

    @property
    def token_budget(self) -> int | None:
        """Tokens the next model loop may spend: the request's token budget less what was spent, and
        no more than what is left of its spend budget buys at the engine's output price."""
        if self.budget is None:
            return None
        limits: list[int] = []
        if self.budget.tokens is not None:
            limits.append(max(0, self.budget.tokens - self.usage.total))
        if self.budget.spend is not None and self.price is not None and max(self.price) > 0:
            left = max(0.0, self.budget.spend - self.usage.cost)
            limits.append(int(left / max(self.price) * 1e6))
        return min(limits) if limits else None

    def spent(self, loop: Any) -> Any:
        """Record a model loop's tokens; returns the loop."""
        self.usage = self.usage + loop.usage
        return loop

    @property
    def question(self) -> str:
        return str(getattr(self.input, "question", "") or self.text)


class Specialist(AgentExecutor):
    name: ClassVar[str]
    skill: ClassVar[str]
    input_model: ClassVar[type[SpecialistInput]] = SpecialistInput
    engine_tools: ClassVar[tuple[str, ...]] = ()  # tool name prefixes the engine's loop may call

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.engine = ctx.engine

    # -- what subclasses provide -------------------------------------------------------------------

    @abstractmethod
    async def offline(self, job: Job) -> SpecialistOutput:
        """The deterministic answer, from the mounted tools alone. May raise ``Rejected``/``Failed``."""

    @abstractmethod
    async def with_engine(self, job: Job) -> SpecialistOutput:
        """The answer with ``self.engine``. May raise ``Rejected``/``Failed``, and ``LLMError`` (the
        caller then answers offline)."""

    def render(self, output: Any) -> str:
        """The artifact's text part, for people."""
        return str(output.result)

    # -- the task ----------------------------------------------------------------------------------

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        if message is None:
            raise ValueError(f"{self.name} needs a message")
        task = context.current_task or _new_task(message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work(updater.new_agent_message([new_text_part(f"{self.name}: working")]))
        job: Job | None = None
        try:
            job = self.job(context, task.id, task.context_id)
            await self.read_board(job)
            output = await self.answer(job)
        except Rejected as no:
            logger.info("%s rejected task %s: %s", self.name, task.id, no.reason)
            data = {
                "agent": self.name,
                "reason": no.reason,
                "suggestedAgent": no.agent,
                "warnings": job.warnings if job else [],
            }
            text = f"{self.name} rejected this task: {no.reason}."
            if no.agent:
                text += f" Send it to the {no.agent} agent."
            await updater.reject(updater.new_agent_message([new_text_part(text), new_data_part(data)]))
            return
        except Failed as exc:
            logger.warning("%s failed task %s: %s", self.name, task.id, exc)
            await updater.failed(updater.new_agent_message([new_text_part(f"{self.name} failed: {exc}")]))
            return
        await self.write_board(job, output)
        output.tools_called = job.tools.names
        output.warnings = job.warnings
        if job.usage.total:
            output.usage = {
                "inputTokens": job.usage.input_tokens,
                "outputTokens": job.usage.output_tokens,
                "spendUsd": job.usage.cost,
                "model": getattr(self.engine, "model", None),
            }
        checked = type(output).model_validate(output.model_dump())
        await updater.add_artifact(
            [
                new_text_part(self.render(checked)),
                new_data_part(checked.model_dump(mode="json", by_alias=True)),
            ],
            artifact_id=f"{task.id}-{self.name}",
            name=f"{self.name}-result",
        )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()

    def job(self, context: RequestContext, task_id: str, context_id: str) -> Job:
        """The request parsed and validated. Raises ``Rejected`` for input that does not fit the model."""
        assert context.message is not None
        text = context.get_user_input().strip()
        data: dict[str, Any] = {}
        for part in context.message.parts:
            if part.HasField("data"):
                value = MessageToDict(part.data)
                if isinstance(value, dict):
                    data.update(value)
        metadata = dict(context.metadata)
        if context.message.HasField("metadata"):
            metadata.update(MessageToDict(context.message.metadata))
        payload = {"question": text, **data}
        if "blackboard" not in payload and "blackboard" in metadata:
            payload["blackboard"] = metadata["blackboard"]
        try:
            parsed = self.input_model.model_validate(payload)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            raise Rejected(f"the input does not fit the {self.name}'s input shape ({problems})") from exc
        # The text is the task; without one (a data part only), the data's question is.
        route = classify(text or parsed.question, data)
        budget = _budget(context, metadata)
        recorder = Recorder(self.ctx.tools, deadline=budget.deadline if budget else None)
        return Job(
            task_id, context_id, text, data, parsed, route, recorder, budget=budget, price=self._price()
        )

    def _price(self) -> tuple[float, float] | None:
        if self.engine is None:
            return None
        from podium.agents.llm.prices import price_for

        own = getattr(self.engine, "price", None)
        return own or price_for(str(self.engine.model), getattr(self.engine, "base_url", None))

    async def answer(self, job: Job) -> SpecialistOutput:
        """The engine's answer when there is an engine, else (or when the engine fails) the offline one."""
        if self.engine is not None:
            try:
                return await self.with_engine(job)
            except LLMError as exc:
                logger.warning("%s: engine failed, answering offline: %s", self.name, exc)
                job.warnings.append(f"the model failed ({exc}); answered offline")
        return await self.offline(job)

    def reject_unless(self, job: Job, *kinds: str) -> None:
        """Raise ``Rejected`` naming the right agent when the task is not one of ``kinds``."""
        if job.route.kind not in kinds:
            raise Rejected(misrouted(job.route, self.name), job.route.agent)

    def output(self, job: Job, model: type[BaseModel], **fields: Any) -> Any:
        engine = fields.pop("engine", "offline")
        return model.model_validate(
            {"agent": self.name, "skill": self.skill, "task_id": job.task_id, "engine": engine, **fields}
        )

    # -- the blackboard ----------------------------------------------------------------------------

    def _board_ok(self, job: Job, tool: str) -> bool:
        if not job.tools.has(tool):
            job.warnings.append(f"blackboard: this agent may not call {tool}")
            return False
        if not BOARD_CONTEXT.match(job.context_id):
            job.warnings.append(f"blackboard: context id {job.context_id!r} cannot name a board")
            return False
        return True

    async def read_board(self, job: Job) -> None:
        spec = job.input.blackboard
        if spec is None or not spec.read or not self._board_ok(job, "blackboard__read"):
            return
        for key in spec.read:
            result = await job.tools.call("blackboard__read", {"context_id": job.context_id, "key": key})
            if result.is_error or not isinstance(result.data, dict):
                job.warnings.append(f"blackboard: could not read {key!r}: {result.text}")
            else:
                job.board[key] = str(result.data.get("value", ""))

    async def write_board(self, job: Job, output: SpecialistOutput) -> None:
        spec = job.input.blackboard
        if spec is None or spec.write is None:
            return
        value = output.model_dump_json(exclude={"tools_called", "warnings"}, by_alias=True)
        if len(value.encode()) > MAX_BOARD_NOTE:
            value = json.dumps({"taskId": job.task_id, "agent": self.name, "result": output.result[:8000]})
        args = {"context_id": job.context_id, "key": spec.write, "value": value, "author": self.name}
        if job.tools.has("blackboard__write"):
            if not self._board_ok(job, "blackboard__write"):
                return
            result = await job.tools.call("blackboard__write", args)
        elif self._board_ok(job, "blackboard__append"):
            result = await self._append_once(job, args)
        else:
            return
        if result.is_error:
            job.warnings.append(f"blackboard: could not write {spec.write!r}: {result.text}")

    async def _append_once(self, job: Job, args: dict[str, Any]) -> ToolResult:
        """Append this task's result unless the note already holds it (a re-run of the same task)."""
        if job.tools.has("blackboard__read"):
            current = await job.tools.call(
                "blackboard__read", {"context_id": job.context_id, "key": args["key"]}
            )
            if (
                not current.is_error
                and isinstance(current.data, dict)
                and _holds_task(str(current.data.get("value")), job.task_id)
            ):
                return current
        return await job.tools.call("blackboard__append", {**args, "value": args["value"] + "\n"})


def _new_task(message: Message) -> Task:
    """The task for a new message. Unlike ``new_task_from_user_message``, an empty text part is fine: the task
    may be given entirely in a data part (``{"question": ...}``)."""
    return Task(
        status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
        id=message.task_id or str(uuid.uuid4()),
        context_id=message.context_id or str(uuid.uuid4()),
        history=[message],
    )


def _holds_task(note: str, task_id: str) -> bool:
    """Whether an appended note already holds ``task_id``'s result (written as ``taskId``, or ``task_id``
    before Podium's JSON went camelCase)."""
    return any(item.get("taskId", item.get("task_id")) == task_id for item in _json_lines(note))


def _json_lines(value: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for line in value.splitlines() or [value]:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            found.append(item)
    return found


def board_json(job: Job) -> list[dict[str, Any]]:
    """The blackboard notes read for ``job`` that hold specialists' JSON results (one per line), as written:
    keys camelCase, or snake_case in notes written before; validate them with the models, which take both."""
    return [item for value in job.board.values() for item in _json_lines(value)]


def _budget(context: RequestContext, metadata: dict[str, Any]) -> Budget | None:
    """The request's budget: from the bus envelope (the call context), else the ``podium.budget``
    message metadata an HTTP caller sends; None when it has none (or a malformed one)."""
    carried = context.call_context.state.get("budget") if context.call_context else None
    if isinstance(carried, Budget):
        return carried
    raw = metadata.get("podium.budget")
    if not isinstance(raw, dict):
        return None
    try:
        return Budget.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError:
        return None
