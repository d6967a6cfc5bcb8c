"""One orchestration of one A2A task: plan, run, synthesise — and pick up where a crash or an approval
left off.

A :class:`Session` is created each time the orchestrator's executor is called for a task: for a new
request, for the caller's answer to an approval prompt, or to resume a run whose replica died. The
checkpoint says which: a task with no checkpoint starts; one waiting for approval applies the answer;
any other continues its plan without repeating finished steps. Only the replica holding the run's
lease works on it; another one that is handed the same task waits for that run to end.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from a2a.helpers.proto_helpers import new_data_part, new_text_part
from a2a.server.agent_execution import RequestContext
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import Task, TaskState

from podium.agents.orchestrator.approval import (
    approval_asks,
    approval_prompt,
    approval_reason,
    estimate_cost,
    read_decisions,
)
from podium.agents.orchestrator.budget import Spending, spend_total
from podium.agents.orchestrator.catalog import Catalog
from podium.agents.orchestrator.dispatch import Dispatcher
from podium.agents.orchestrator.errors import BudgetExceeded, PlanError
from podium.agents.orchestrator.events import OPTIONS, Ask, RunStatus, SessionEvent, StatusEvent, TraceEvent
from podium.agents.orchestrator.plan import Plan, parse_plan, validate_plan
from podium.agents.orchestrator.request import (
    MAX_REQUEST_CHARS,
    RESUME_KEY,
    BadRequest,
    message_metadata,
    read_request,
)
from podium.agents.orchestrator.runner import Runner
from podium.agents.orchestrator.services import Services
from podium.agents.orchestrator.state.checkpoints import Request, RunState
from podium.agents.orchestrator.synth import gather
from podium.agents.orchestrator.updates import Updates
from podium.agents.orchestrator.workflows import plan_for
from podium.bus import telemetry
from podium.bus.backoff import TRANSIENT, Backoff, through_outages
from podium.bus.task_store import TERMINAL

logger = logging.getLogger(__name__)

OUTAGE_LIMIT_S = 120.0  # how long a run waits for Redis to come back before it gives up
END_CHECK_S = 30.0  # how long a run waits to see its final status stored before leaving it to a resume

Decisions = dict[str, dict[str, Any]]  # step -> the caller's decision


class Session:
    def __init__(
        self,
        services: Services,
        context: RequestContext,
        task: Task,
        updater: TaskUpdater,
        *,
        fresh: bool = False,
    ) -> None:
        self.services = services
        self.fresh = fresh  # a new task: its checkpoint (if any) was written when it was accepted
        self.context = context
        self.task = task
        self.updater = updater
        self.trace = services.open_trace(task.id)
        self.updates = Updates(updater, self.trace)
        self.trace.listeners.append(self.updates.stream)

    # -- entry ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        leases, task_id = self.services.leases, self.task.id
        if not await through_outages(lambda: leases.acquire(task_id), within=OUTAGE_LIMIT_S):
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
                if time.monotonic() > deadline or self.updates.ended:
                    raise
                lost = group.exceptions[0]
            if lost is not None:
                exc = lost
                logger.warning("task %s: Redis unavailable (%s); continuing from the checkpoint when it is back",
                               self.task.id, exc)  # fmt: skip
                await self.updates.flush_quietly()
                while time.monotonic() < deadline:
                    await backoff.sleep()
                    try:
                        await self.services.ping()
                        break
                    except TRANSIENT:
                        continue
                await self.trace.record(
                    TraceEvent.RESUME, reason=f"Redis was unavailable ({exc}); continuing from the checkpoint"
                )

    # -- the run, phase by phase ---------------------------------------------------------------------

    async def _run(self) -> None:
        begun = await self._begin()
        if begun is None:
            return
        state, approvals = begun
        spending = _spending(state)
        catalog = await Catalog.load(self.services.registry, self.services.name)
        if state.plan is None and not await self._make_plan(state, catalog, spending):
            return
        assert state.plan is not None
        if await self._over_cost_limit(state, state.plan, spending, approvals):
            return
        if approvals.get("plan", {}).get("decision") == "reject":
            await self.updates.end(
                TaskState.TASK_STATE_CANCELED, "The caller declined the plan; nothing was run."
            )
            await self._close(RunStatus.FAILED)
            return
        runner = await self._execute(state, state.plan, catalog, spending, approvals)
        if runner.waiting and not runner.stopped:
            await self._pause(state, runner.waiting, catalog, approvals)
            return
        await self._answer(state, state.plan, runner, spending)

    async def _begin(self) -> tuple[RunState, Decisions] | None:
        """The run to work on and the caller's decisions so far: a new run, one the caller just answered,
        or one to continue. None when there is nothing to do (finished, or the answer asked again)."""
        checkpoints, task_id = self.services.checkpoints, self.task.id
        state = await checkpoints.load(task_id)
        approvals: Decisions = {}
        if state is None or self.fresh:
            if state is None:  # not checkpointed when accepted (a request that cannot be orchestrated)
                try:
                    request = read_request(self.context, self.task.context_id)
                except BadRequest as exc:
                    await self.services.leases.release(task_id)
                    await self.updates.end(TaskState.TASK_STATE_FAILED, exc.message)
                    return None
                state = RunState(request=request)
                await checkpoints.start(task_id, state)
            # Who asked, for the trace only: delegations go out as the orchestrator, never as the caller.
            caller = self.context.call_context.user.user_name if self.context.call_context else ""
            await self.trace.record(
                TraceEvent.CALLER,
                reason=f"asked by {caller or 'an unauthenticated caller'}",
                data={"caller": caller},
            )
            await self.updater.start_work(self.updates.message("Planning…", {"event": SessionEvent.PLANNING}))
        elif state.status == RunStatus.WAITING_APPROVAL:
            timed_out = message_metadata(self.context).get(RESUME_KEY) == "approval timed out"
            decisions = read_decisions(state.approval or {}, self.context, timed_out)
            if decisions is None:
                await self._ask_again(state)
                return None
            approvals = decisions
            await self._record_decisions(state, decisions)
        elif state.status.ended:
            await self.services.leases.release(task_id)
            return None
        else:
            reason = message_metadata(self.context).get(RESUME_KEY) or "the request was delivered again"
            await self.trace.record(TraceEvent.RESUME, reason=f"continuing from the checkpoint ({reason})")
        if state.approval:
            approvals = {**state.approval.get("decisions", {}), **approvals}
        return state, approvals

    async def _record_decisions(self, state: RunState, decisions: Decisions) -> None:
        state.approval = {
            **(state.approval or {}),
            "decisions": {**(state.approval or {}).get("decisions", {}), **decisions},
        }
        await self.services.checkpoints.save_status(self.task.id, RunStatus.RUNNING, state.approval)
        for step, decision in decisions.items():
            await self.trace.record(
                TraceEvent.APPROVAL,
                step=step,
                state=decision["decision"],
                reason=f"by {decision.get('by', 'the caller')}"
                + (f": new instruction {decision['instruction']!r}" if decision.get("instruction") else ""),
            )

    async def _make_plan(self, state: RunState, catalog: Catalog, spending: Spending) -> bool:
        """Plan the request and checkpoint the plan. False when there is no plan (the task has failed)."""
        task_id, planner = self.task.id, self.services.planner
        try:
            with telemetry.span("plan", **{"podium.planner": planner.name}):
                state.plan = await self._plan(state.request, catalog, spending)
        except PlanError as exc:
            await self.trace.record(TraceEvent.ERROR, reason=exc.message)
            await self.services.checkpoints.save_status(task_id, RunStatus.FAILED)
            await self.services.leases.release(task_id)
            await self.updates.end(TaskState.TASK_STATE_FAILED, f"No plan: {exc.message}")
            return False
        await self.services.checkpoints.save_plan(task_id, state.plan)
        await self.trace.record(
            TraceEvent.PLAN,
            state=f"{len(state.plan.steps)} steps",
            agent=state.plan.planner,
            reason=state.plan.reason or f"planned by the {state.plan.planner} planner",
            data={"plan": state.plan.model_dump(mode="json", by_alias=True, exclude_none=True)},
        )
        return True

    async def _plan(self, request: Request, catalog: Catalog, spending: Spending) -> Plan:
        given = request.data.get("plan")
        if given is not None:
            plan = parse_plan(given)
            plan.planner = "caller"
            return validate_plan(plan, catalog.skills(), catalog.agents())
        services = self.services
        fixed = await plan_for(
            services.workflows, request.text, request.data, catalog.skills(), catalog.agents()
        )
        if fixed is not None:
            return fixed
        data = {k: v for k, v in request.data.items() if k != "question"}
        return await services.planner.plan(request.text, data, catalog, spending=spending, trace=self.trace)

    async def _over_cost_limit(
        self, state: RunState, plan: Plan, spending: Spending, approvals: Decisions
    ) -> bool:
        """Ask the caller to approve a plan estimated over the cost limit. True when it asked."""
        approval = self.services.settings.approval
        limit = approval.cost_limit_usd
        if limit is None or "plan" in approvals:
            return False
        estimate = estimate_cost(plan, spending, approval.estimated_call_usd)
        if estimate <= limit:
            return False
        reason = f"its estimated cost ${estimate:.4g} is over the limit of ${limit:.4g}"
        await self.trace.record(TraceEvent.APPROVAL, step="plan", state="waiting", reason=reason)
        ask = Ask(
            step="plan", title=f"run the plan of {len(plan.steps)} steps", reason=reason,
            instruction=state.request.text,
        ).model_dump()  # fmt: skip
        await self._ask([ask], approvals)
        return True

    async def _execute(
        self, state: RunState, plan: Plan, catalog: Catalog, spending: Spending, approvals: Decisions
    ) -> Runner:
        """Run the plan's steps not yet done (the runner says which wait for approval)."""
        s, task_id = self.services, self.task.id
        dispatcher = Dispatcher(
            catalog, s.delegator, s.breakers, self.trace, spending, task_id, self.task.context_id, s.policy,
            traceparent=state.request.traceparent,
        )  # fmt: skip
        runner = Runner(
            plan, state.request.text, dispatcher, self.trace, s.checkpoints, task_id, s.planner,
            results=dict(state.results), approvals=approvals, max_parallel=s.settings.max_parallel,
            needs_approval=approval_reason(s.settings.approval, catalog),
        )  # fmt: skip
        await runner.run()
        await s.checkpoints.save_usage(task_id, spending.used)
        return runner

    async def _answer(self, state: RunState, plan: Plan, runner: Runner, spending: Spending) -> None:
        """Synthesise the answer, attach it, and end the task (partial answers name their gaps)."""
        task_id, results = self.task.id, runner.results
        material = gather(state.request.text, plan, results, runner.stopped)
        with telemetry.span("synthesise"):
            answer = await self.services.synthesise(material, spending, self.trace)
        data = answer.data(plan, results)
        data["usage"] = spending.report()
        await self.services.checkpoints.save_usage(task_id, spending.used)
        await self.trace.record(
            TraceEvent.SPEND, state="total", reason=spend_total(data["usage"]), data=data["usage"]
        )
        await self.trace.record(
            TraceEvent.ANSWER,
            state="partial" if data["partial"] else "complete",
            agent=answer.synthesiser,
            reason=f"{len(material.sections)} section(s), {len(material.sources)} source(s), "
            f"{len(material.gaps)} gap(s), {len(material.contradictions)} contradiction(s)",
        )
        await self.updater.add_artifact(
            [new_text_part(answer.text), new_data_part(data)], artifact_id=f"{task_id}-answer", name="answer"
        )
        status = RunStatus.DONE
        if runner.stopped:
            status = RunStatus.FAILED
            await self.updates.end(
                TaskState.TASK_STATE_FAILED, f"Stopped: {runner.stopped}. The partial answer is attached."
            )
        elif not material.sections:
            status = RunStatus.FAILED
            await self.updates.end(
                TaskState.TASK_STATE_FAILED, "Nothing could be answered: " + "; ".join(material.gaps)
            )
        else:
            await self.updates.end(TaskState.TASK_STATE_COMPLETED, None)
        if not await self._ended_in_store():
            # The final status never reached the task store (the request's event consumer is gone, e.g.
            # after Redis went away under it): the run stays as it is and its lease expires, so a replica
            # resumes it from the checkpoint and ends it again, instead of leaving the task working forever.
            logger.warning("task %s: its final status was not stored; it will be resumed to end it", task_id)
            return
        await self._close(status)

    async def _close(self, status: RunStatus) -> None:
        """The task has ended: its bookkeeping must not make the run start again."""
        s, task_id = self.services, self.task.id
        await through_outages(lambda: s.checkpoints.save_status(task_id, status), within=OUTAGE_LIMIT_S)
        await through_outages(lambda: s.leases.release(task_id), within=OUTAGE_LIMIT_S)

    async def _ended_in_store(self) -> bool:
        """Whether the terminal status just sent reached the task store (it is saved by the A2A handler's
        event consumer, a moment after the status is enqueued)."""
        deadline = time.monotonic() + END_CHECK_S
        while time.monotonic() < deadline:
            try:
                if await self.services.task_state(self.task.id) in TERMINAL:
                    return True
            except TRANSIENT:
                pass
            await anyio.sleep(0.05)
        return False

    # -- approval ------------------------------------------------------------------------------------

    async def _pause(self, state: RunState, waiting: list[str], catalog: Catalog, decided: Decisions) -> None:
        assert state.plan is not None
        reason = approval_reason(self.services.settings.approval, catalog)
        await self._ask(approval_asks(state.plan, waiting, decided, reason, state.request.text), decided)

    async def _ask(self, asks: list[dict[str, Any]], decided: Decisions) -> None:
        """Pause the task in input-required, asking the caller to decide ``asks``."""
        s = self.services
        settings = s.settings.approval
        deadline = time.time() + settings.timeout_s
        approval = {"asks": asks, "decisions": decided, "deadline": deadline, "default": settings.default}
        await s.checkpoints.save_status(self.task.id, RunStatus.WAITING_APPROVAL, approval)
        await s.leases.park(self.task.id, deadline)
        text = approval_prompt(asks, settings.timeout_s, settings.default)
        await self.updates.pause(
            text,
            _event(
                SessionEvent.APPROVAL, asks=asks, options=OPTIONS, deadline=deadline, default=settings.default
            ),
        )

    async def _ask_again(self, state: RunState) -> None:
        await self.services.leases.park(
            self.task.id, float((state.approval or {}).get("deadline") or time.time())
        )
        await self.updates.pause(
            "I did not understand that answer. Reply approve, reject, or edit: <new instruction>.",
            _event(SessionEvent.APPROVAL, asks=(state.approval or {}).get("asks", []), options=OPTIONS),
        )

    # -- leases, other replicas ----------------------------------------------------------------------

    async def _keep_lease(self) -> None:
        leases = self.services.leases
        while True:
            await anyio.sleep(leases.lease_ms / 3000)
            try:
                await leases.renew([self.task.id])
            except Exception as exc:  # Redis briefly away: the next renewal may still make it
                logger.warning("could not renew the lease of %s: %s", self.task.id, exc)

    async def _wait_for_other_replica(self) -> None:
        """Another live replica runs this task: wait for it to stop, then say so, which makes the A2A
        handler see the newer task state and answer with it."""
        leases = self.services.leases
        owner = await leases.owner(self.task.id)
        logger.info("task %s is running on %s: waiting for it", self.task.id, owner)
        while True:
            stored = await self.services.task_state(self.task.id)
            if stored is None or stored in TERMINAL or stored == TaskState.TASK_STATE_INPUT_REQUIRED:
                break
            if await leases.acquire(self.task.id):  # its replica died meanwhile: take over
                await self._run()
                return
            await anyio.sleep(0.5)
        await self.updates.status(
            TaskState.TASK_STATE_WORKING, f"the run finished on {owner}", {"event": SessionEvent.HANDOVER}
        )


def _event(event: SessionEvent, **fields: Any) -> dict[str, Any]:
    """A status update's data part, as :class:`StatusEvent` describes it."""
    return StatusEvent(event=event, **fields).model_dump(mode="json", by_alias=True, exclude_none=True)


def _spending(state: RunState) -> Spending:
    """What the run may still spend: the request's budget less what it used before."""
    try:
        budget = Spending.parse(state.request.budget) if state.request.budget else None
    except ValueError:
        budget = None
    return Spending.from_budget(budget, state.usage)


__all__ = ["MAX_REQUEST_CHARS", "RESUME_KEY", "BadRequest", "BudgetExceeded", "Session"]
