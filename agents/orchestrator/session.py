"""One orchestration of one A2A task: plan, run, synthesise — and pick up where a crash or an approval
left off.

A :class:`Session` is created each time the orchestrator's executor is called for a task: for a new
request, for the caller's answer to an approval prompt, or to resume a run whose replica died. The
checkpoint says which: a task with no checkpoint starts; one waiting for approval applies the answer;
any other continues its plan without repeating finished steps. Only the replica holding the run's
lease works on it; another one that is handed the same task waits for that run to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio
from a2a.helpers.proto_helpers import new_data_part, new_text_part
from a2a.server.agent_execution import RequestContext
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import Part, Task, TaskState
from google.protobuf.json_format import MessageToDict

from podium.agents.orchestrator.approval import approval_asks, approval_prompt, parse_decision
from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.catalog import Catalog
from podium.agents.orchestrator.delegate import BUDGET_METADATA_KEY
from podium.agents.orchestrator.dispatch import Dispatcher
from podium.agents.orchestrator.errors import BudgetExceeded, OrchestratorError, PlanError
from podium.agents.orchestrator.plan import Plan, parse_plan, validate_plan
from podium.agents.orchestrator.runner import Runner
from podium.agents.orchestrator.state.checkpoints import Request, RunState
from podium.agents.orchestrator.state.trace import Trace, TraceEntry
from podium.agents.orchestrator.synth import gather
from podium.agents.orchestrator.workflows import explicit_text, plan_for
from podium.bus import telemetry
from podium.bus.backoff import TRANSIENT, Backoff, through_outages
from podium.bus.envelope import Budget
from podium.bus.task_store import TERMINAL

if TYPE_CHECKING:
    from podium.agents.orchestrator.executor import Orchestrator

logger = logging.getLogger(__name__)

MAX_REQUEST_CHARS = 20_000
RESUME_KEY = "podium.resume"
TEXT_MODES = ("text/plain", "application/json")
UPDATE_WINDOW_S = 0.02
OUTAGE_LIMIT_S = 120.0  # how long a run waits for Redis to come back before it gives up
END_CHECK_S = 30.0  # how long a run waits to see its final status stored before leaving it to a resume


class BadRequest(OrchestratorError):
    """The request cannot be orchestrated as sent (empty, too long, a part type not accepted)."""


class Session:
    def __init__(self, orch: Orchestrator, context: RequestContext, task: Task, updater: TaskUpdater) -> None:
        self.orch = orch
        self.context = context
        self.task = task
        self.updater = updater
        self.trace = Trace(orch.ctx.redis, orch.ctx.keys, task.id)
        self.trace.listeners.append(self._stream)
        self._closed = False
        self._ended = False  # a terminal status was sent: the run must never start again
        self._outbox: list[TraceEntry] = []
        self._sender: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()  # set when the run pauses or ends: send what is queued at once

    # -- entry ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        orch, task_id = self.orch, self.task.id
        if not await through_outages(lambda: orch.leases.acquire(task_id), within=OUTAGE_LIMIT_S):
            await self._wait_for_other_replica()
            return
        # A crash (or cancellation) mid-run keeps the lease, to expire, so another replica resumes.
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_lease)
            try:
                await self._run_through_outages()
            finally:
                tg.cancel_scope.cancel()

    async def _run_through_outages(self) -> None:
        """Run; when Redis goes away mid-run (restarting, loading its data), wait for it and continue
        from the checkpoint, rather than fail a task that only lost its connection."""
        backoff = Backoff(first=0.2, cap=5.0)
        deadline = time.monotonic() + OUTAGE_LIMIT_S
        while True:
            lost: BaseException | None = None
            try:
                await self._run()
                return
            except* TRANSIENT as group:  # task groups wrap what their tasks raise
                if time.monotonic() > deadline or self._ended:
                    raise
                lost = group.exceptions[0]
            if lost is not None:
                exc = lost
                logger.warning("task %s: Redis unavailable (%s); continuing from the checkpoint when it is back",
                               self.task.id, exc)  # fmt: skip
                await self._flush_quietly()
                while time.monotonic() < deadline:
                    await backoff.sleep()
                    try:
                        await self.orch.ctx.redis.ping()
                        break
                    except TRANSIENT:
                        continue
                await self.trace.record(
                    "resume", reason=f"Redis was unavailable ({exc}); continuing from the checkpoint"
                )

    async def _flush_quietly(self) -> None:
        try:
            await self._flush()
        except Exception as exc:  # the stream to the caller is best effort while Redis is away
            logger.debug("could not flush updates of %s: %s", self.task.id, exc)

    async def _run(self) -> None:
        orch, task_id = self.orch, self.task.id
        state = await orch.checkpoints.load(task_id)
        approvals: dict[str, dict[str, Any]] = {}
        if state is None:
            try:
                request = self._request()
            except BadRequest as exc:
                await orch.leases.release(task_id)
                await self._end(TaskState.TASK_STATE_FAILED, exc.message)
                return
            state = RunState(request=request)
            await orch.checkpoints.start(task_id, state)
            await self.updater.start_work(self._message("Planning…", {"event": "planning"}))
        elif state.status == "waiting-approval":
            decisions = self._decisions(state)
            if decisions is None:
                await self._ask_again(state)
                return
            approvals = decisions
            state.approval = {
                **(state.approval or {}),
                "decisions": {**(state.approval or {}).get("decisions", {}), **decisions},
            }
            await orch.checkpoints.save_status(task_id, "running", state.approval)
            for step, decision in decisions.items():
                await self.trace.record(
                    "approval",
                    step=step,
                    state=decision["decision"],
                    reason=f"by {decision.get('by', 'the caller')}"
                    + (
                        f": new instruction {decision['instruction']!r}"
                        if decision.get("instruction")
                        else ""
                    ),
                )
        elif state.status in ("done", "failed"):
            await orch.leases.release(task_id)
            return
        else:
            reason = self._metadata().get(RESUME_KEY) or "the request was delivered again"
            await self.trace.record("resume", reason=f"continuing from the checkpoint ({reason})")
        if state.approval:
            approvals = {**state.approval.get("decisions", {}), **approvals}
        try:
            budget = Spending.parse(state.request.budget) if state.request.budget else None
        except ValueError:
            budget = None
        spending = Spending.from_budget(budget, state.usage)
        catalog = await Catalog.load(orch.registry, orch.ctx.name)
        if state.plan is None:
            try:
                with telemetry.span("plan", **{"podium.planner": getattr(orch.planner, "name", "offline")}):
                    state.plan = await self._plan(state.request, catalog, spending)
            except PlanError as exc:
                await self.trace.record("error", reason=exc.message)
                await orch.checkpoints.save_status(task_id, "failed")
                await orch.leases.release(task_id)
                await self._end(TaskState.TASK_STATE_FAILED, f"No plan: {exc.message}")
                return
            await orch.checkpoints.save_plan(task_id, state.plan)
            await self.trace.record(
                "plan",
                state=f"{len(state.plan.steps)} steps",
                agent=state.plan.planner,
                reason=state.plan.reason or f"planned by the {state.plan.planner} planner",
                data={"plan": state.plan.model_dump(mode="json", by_alias=True, exclude_none=True)},
            )
        plan = state.plan
        limit = orch.settings.approval.cost_limit_usd
        if limit is not None and "plan" not in approvals:
            estimate = orch.estimate_cost(plan, spending)
            if estimate > limit:
                reason = f"its estimated cost ${estimate:.4g} is over the limit of ${limit:.4g}"
                await self.trace.record("approval", step="plan", state="waiting", reason=reason)
                ask = {
                    "step": "plan",
                    "title": f"run the plan of {len(plan.steps)} steps",
                    "reason": reason,
                    "skill": None,
                    "instruction": state.request.text,
                }
                await self._ask([ask], approvals)
                return
        if approvals.get("plan", {}).get("decision") == "reject":
            await self._end(TaskState.TASK_STATE_CANCELED, "The caller declined the plan; nothing was run.")
            await through_outages(
                lambda: orch.checkpoints.save_status(task_id, "failed"), within=OUTAGE_LIMIT_S
            )
            await through_outages(lambda: orch.leases.release(task_id), within=OUTAGE_LIMIT_S)
            return
        dispatcher = Dispatcher(
            catalog,
            orch.delegator,
            orch.breakers,
            self.trace,
            spending,
            task_id,
            self.task.context_id,
            orch.policy,
            traceparent=state.request.traceparent,
        )
        runner = Runner(
            plan,
            state.request.text,
            dispatcher,
            self.trace,
            orch.checkpoints,
            task_id,
            orch.planner,
            results=dict(state.results),
            approvals=approvals,
            needs_approval=orch.approval_reason(catalog),
            max_parallel=orch.settings.max_parallel,
        )
        results = await runner.run()
        await orch.checkpoints.save_usage(task_id, spending.used)
        if runner.waiting and not runner.stopped:
            await self._pause(state, runner.waiting, catalog, approvals)
            return
        material = gather(state.request.text, plan, results, runner.stopped)
        with telemetry.span("synthesise"):
            answer = await orch.synthesise(material, spending, self.trace)
        data = answer.data(plan, results)
        await self.trace.record(
            "answer",
            state="partial" if data["partial"] else "complete",
            agent=answer.synthesiser,
            reason=f"{len(material.sections)} section(s), {len(material.sources)} source(s), "
            f"{len(material.gaps)} gap(s), {len(material.contradictions)} contradiction(s)",
        )
        await self.updater.add_artifact(
            [new_text_part(answer.text), new_data_part(data)], artifact_id=f"{task_id}-answer", name="answer"
        )
        status = "done"
        if runner.stopped:
            status = "failed"
            await self._end(
                TaskState.TASK_STATE_FAILED, f"Stopped: {runner.stopped}. The partial answer is attached."
            )
        elif not material.sections:
            status = "failed"
            await self._end(
                TaskState.TASK_STATE_FAILED, "Nothing could be answered: " + "; ".join(material.gaps)
            )
        else:
            await self._end(TaskState.TASK_STATE_COMPLETED, None)
        if not await self._ended_in_store():
            # The final status never reached the task store (the request's event consumer is gone, e.g.
            # after Redis went away under it): the run stays as it is and its lease expires, so a replica
            # resumes it from the checkpoint and ends it again, instead of leaving the task working forever.
            logger.warning("task %s: its final status was not stored; it will be resumed to end it", task_id)
            return
        # the task has ended: its bookkeeping must not make the run start again
        await through_outages(lambda: orch.checkpoints.save_status(task_id, status), within=OUTAGE_LIMIT_S)
        await through_outages(lambda: orch.leases.release(task_id), within=OUTAGE_LIMIT_S)

    # -- the request and its plan --------------------------------------------------------------------

    def _request(self) -> Request:
        message = self.context.message
        assert message is not None
        texts: list[str] = []
        data: dict[str, Any] = {}
        for part in message.parts:
            kind = part.WhichOneof("content")
            if kind == "text":
                texts.append(part.text)
            elif kind == "data":
                value = MessageToDict(part.data)
                if isinstance(value, dict):
                    data.update(value)
            else:
                raise BadRequest(
                    f"the orchestrator accepts text and JSON data parts ({', '.join(TEXT_MODES)}), "
                    f"not a {kind} part: send the content as text"
                )
        text = "\n".join(t for t in texts if t).strip() or str(data.get("question") or "").strip()
        if not text and "plan" not in data and "workflow" not in data:
            raise BadRequest("the request is empty: send a question or a task as a text part")
        if len(text) > MAX_REQUEST_CHARS:
            raise BadRequest(f"the request is {len(text)} characters; the limit is {MAX_REQUEST_CHARS}")
        metadata = self._metadata()
        raw_budget: Any = metadata.get(BUDGET_METADATA_KEY)
        carried = self.context.call_context.state.get("budget") if self.context.call_context else None
        try:
            budget = Spending.parse(raw_budget)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        if isinstance(carried, Budget):
            budget = carried if budget is None else _tighter(budget, carried)
        traceparent = (
            self.context.call_context.state.get("traceparent") if self.context.call_context else None
        )
        return Request(
            text=text
            or (explicit_text(str(data["workflow"])) if "workflow" in data else "(a plan given as data)"),
            data=data,
            context_id=self.task.context_id,
            budget=budget.model_dump(exclude_none=True) if budget else {},
            traceparent=traceparent,
        )

    async def _plan(self, request: Request, catalog: Catalog, spending: Spending) -> Plan:
        given = request.data.get("plan")
        if given is not None:
            plan = parse_plan(given)
            plan.planner = "caller"
            return validate_plan(plan, catalog.skills(), catalog.agents())
        fixed = await plan_for(
            self.orch.workflows, request.text, request.data, catalog.skills(), catalog.agents()
        )
        if fixed is not None:
            return fixed
        data = {k: v for k, v in request.data.items() if k != "question"}
        return await self.orch.plan(request.text, data, catalog, spending, self.trace)

    def _metadata(self) -> dict[str, Any]:
        message = self.context.message
        metadata = dict(self.context.metadata or {})
        if message is not None and message.HasField("metadata"):
            metadata.update(MessageToDict(message.metadata))
        return metadata

    # -- approval ------------------------------------------------------------------------------------

    async def _pause(
        self, state: RunState, waiting: list[str], catalog: Catalog, decided: dict[str, dict[str, Any]]
    ) -> None:
        assert state.plan is not None
        reason = self.orch.approval_reason(catalog)
        await self._ask(approval_asks(state.plan, waiting, decided, reason, state.request.text), decided)

    async def _ask(self, asks: list[dict[str, Any]], decided: dict[str, dict[str, Any]]) -> None:
        """Pause the task in input-required, asking the caller to decide ``asks``."""
        orch = self.orch
        deadline = time.time() + orch.settings.approval.timeout_s
        approval = {
            "asks": asks,
            "decisions": decided,
            "deadline": deadline,
            "default": orch.settings.approval.default,
        }
        await orch.checkpoints.save_status(self.task.id, "waiting-approval", approval)
        await orch.leases.park(self.task.id, deadline)
        text = approval_prompt(asks, orch.settings.approval.timeout_s, orch.settings.approval.default)
        await self._flush()
        self._closed = True
        await self.updater.requires_input(
            self._message(
                text,
                {
                    "event": "approval",
                    "asks": asks,
                    "options": ["approve", "reject", "edit"],
                    "deadline": deadline,
                    "default": orch.settings.approval.default,
                },
            )
        )

    def _decisions(self, state: RunState) -> dict[str, dict[str, Any]] | None:
        """The caller's answer to the pending approval, per step; None when it is not an answer."""
        approval = state.approval or {}
        asks = [a["step"] for a in approval.get("asks", [])]
        metadata = self._metadata()
        decision: dict[str, Any] | None
        if metadata.get(RESUME_KEY) == "approval timed out":
            decision = {
                "decision": approval.get("default", "deny").replace("deny", "reject"),
                "by": "timeout",
            }
        else:
            decision = parse_decision(self.context)
        if decision is None:
            return None
        return {step: dict(decision) for step in asks}

    async def _ask_again(self, state: RunState) -> None:
        await self.orch.leases.park(
            self.task.id, float((state.approval or {}).get("deadline") or time.time())
        )
        await self._flush()
        self._closed = True
        await self.updater.requires_input(
            self._message(
                "I did not understand that answer. Reply approve, reject, or edit: <new instruction>.",
                {
                    "event": "approval",
                    "asks": (state.approval or {}).get("asks", []),
                    "options": ["approve", "reject", "edit"],
                },
            )
        )

    # -- leases, other replicas ----------------------------------------------------------------------

    async def _keep_lease(self) -> None:
        while True:
            await anyio.sleep(self.orch.leases.lease_ms / 3000)
            try:
                await self.orch.leases.renew([self.task.id])
            except Exception as exc:  # Redis briefly away: the next renewal may still make it
                logger.warning("could not renew the lease of %s: %s", self.task.id, exc)

    async def _wait_for_other_replica(self) -> None:
        """Another live replica runs this task: wait for it to stop, then say so, which makes the A2A
        handler see the newer task state and answer with it."""
        owner = await self.orch.leases.owner(self.task.id)
        logger.info("task %s is running on %s: waiting for it", self.task.id, owner)
        while True:
            stored = await self.orch.task_state(self.task.id)
            if stored is None or stored in TERMINAL or stored == TaskState.TASK_STATE_INPUT_REQUIRED:
                break
            if await self.orch.leases.acquire(self.task.id):  # its replica died meanwhile: take over
                await self._run()
                return
            await anyio.sleep(0.5)
        await self.updater.update_status(
            TaskState.TASK_STATE_WORKING, self._message(f"the run finished on {owner}", {"event": "handover"})
        )

    # -- the caller's view ---------------------------------------------------------------------------

    def _stream(self, entry: TraceEntry) -> None:
        """Queue ``entry`` for the caller. One sender turns what queued up meanwhile into one status
        update (a text line per entry, a data part per entry), at most one every ``UPDATE_WINDOW_S``:
        each update is a task-store write, and a fan-out of many steps would otherwise write per entry."""
        if self._closed:
            return
        self._outbox.append(entry)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            parts: list[Part] = [new_text_part("\n".join(_line(e) for e in batch))]
            parts += [new_data_part(e.dump()) for e in batch]
            await self.updater.update_status(
                TaskState.TASK_STATE_WORKING, self.updater.new_agent_message(parts)
            )
            if not self._hurry.is_set():  # gather what comes meanwhile, unless the run is ending
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), UPDATE_WINDOW_S)

    async def _flush(self) -> None:
        """Send what is queued now, before a status that ends the stream (no waiting out the window)."""
        self._hurry.set()
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)
        self._hurry.clear()  # a run that goes on (after an outage) coalesces again
        await self.trace.drain()

    def _message(self, text: str, data: dict[str, Any]) -> Any:
        """A status message: a text part for people and a data part for programs."""
        parts: list[Part] = [new_text_part(text), new_data_part(data)]
        return self.updater.new_agent_message(parts)

    async def _ended_in_store(self) -> bool:
        """Whether the terminal status just sent reached the task store (it is saved by the A2A handler's
        event consumer, a moment after the status is enqueued)."""
        deadline = time.monotonic() + END_CHECK_S
        while time.monotonic() < deadline:
            try:
                if await self.orch.task_state(self.task.id) in TERMINAL:
                    return True
            except TRANSIENT:
                pass
            await anyio.sleep(0.05)
        return False

    async def _end(self, state: TaskState, text: str | None) -> None:
        await self._flush()
        self._closed = self._ended = True
        message = self._message(text, {"event": "end", "reason": text}) if text else None
        await self.updater.update_status(state, message)


def _tighter(a: Budget, b: Budget) -> Budget:
    def low(x: Any, y: Any) -> Any:
        return y if x is None else x if y is None else min(x, y)

    return Budget(
        hops=low(a.hops, b.hops),
        tokens=low(a.tokens, b.tokens),
        deadline=low(a.deadline, b.deadline),
        spend=low(a.spend, b.spend),
    )


def _plan_line(plan: dict[str, Any]) -> str:
    steps = plan.get("steps") or []
    names = []
    for s in steps:
        pattern = s.get("pattern", "task")
        label = s.get("id", "?")
        names.append(label if pattern == "task" else f"{label} ({pattern})")
    return f"{len(steps)} step(s): " + ", ".join(names)


__all__ = ["BadRequest", "BudgetExceeded", "Session"]


def _line(entry: TraceEntry) -> str:
    if entry.event == "plan" and entry.data.get("plan"):
        return "Plan: " + _plan_line(entry.data["plan"])
    return entry.line()
