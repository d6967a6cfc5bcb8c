"""The orchestrator agent's executor: an A2A ``AgentExecutor`` like every other agent's.

It holds what outlives one task — the process's one :class:`BusClient`, the delegator, the shared
breakers, checkpoints and leases, the planner and the synthesiser — and runs a :class:`Session` per
call. Its background loop (:meth:`Orchestrator.serve`, started by the agent runtime) resumes runs whose
replica died and answers approvals that timed out, by sending the task a message through the same A2A
request handler a caller would use.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

import anyio
from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import Message, Role, SendMessageRequest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from podium.agents.host.config import load_config
from podium.agents.host.context import AgentContext
from podium.agents.orchestrator.accept import accept
from podium.agents.orchestrator.approval import approval_reason, estimate_cost
from podium.agents.orchestrator.budget import Spending
from podium.agents.orchestrator.catalog import Catalog
from podium.agents.orchestrator.delegate import Delegator
from podium.agents.orchestrator.dispatch import Policy
from podium.agents.orchestrator.events import RunStatus
from podium.agents.orchestrator.plan import Plan
from podium.agents.orchestrator.planning import Planner
from podium.agents.orchestrator.planning.offline import OfflinePlanner
from podium.agents.orchestrator.request import RESUME_KEY
from podium.agents.orchestrator.services import Services
from podium.agents.orchestrator.session import Session
from podium.agents.orchestrator.settings import OrchestratorSettings, load_settings
from podium.agents.orchestrator.state.breakers import Breakers
from podium.agents.orchestrator.state.checkpoints import Checkpoints
from podium.agents.orchestrator.state.leases import Leases
from podium.agents.orchestrator.state.trace import Trace, TraceLog, read_trace
from podium.agents.orchestrator.synth import Answer, Material, offline_answer
from podium.agents.orchestrator.workflows import WorkflowStore, offer
from podium.bus.a2a_client import BusClient
from podium.bus.backoff import TRANSIENT
from podium.bus.owners import ADMIN, system_context
from podium.bus.task_store import TERMINAL, stored_owner, stored_state
from podium.registry.signing import CardSigner
from podium.registry.store import Registry

logger = logging.getLogger(__name__)


class Orchestrator(AgentExecutor):
    def __init__(self, ctx: AgentContext, settings: OrchestratorSettings | None = None) -> None:
        self.ctx = ctx
        self.settings = settings or OrchestratorSettings()
        s = self.settings
        self.registry = Registry.from_env(ctx.redis, ctx.keys)
        self.checkpoints = Checkpoints(ctx.redis, ctx.keys)
        self.breakers = Breakers(
            ctx.redis, ctx.keys, threshold=s.breaker.threshold, cooldown_s=s.breaker.cooldown_s
        )
        instance = str(ctx.config.get("instance") or f"pid-{os.getpid()}")
        self.leases = Leases(ctx.redis, ctx.keys, ctx.name, instance, lease_s=s.lease_s)
        self.bus = BusClient(ctx.redis, ctx.keys, sender=ctx.name)
        self.delegator = Delegator(self.bus, token=os.environ.get("PODIUM_A2A_TOKEN") or None)
        self.policy = Policy(timeout_s=s.timeout_s, retries=s.retries, cold_start_s=s.cold_start_s)
        self.offline = OfflinePlanner(default_agent=s.default_agent, max_rounds=s.max_rounds)
        self.engine = ctx.engine
        # the planner and the synthesiser may each have a model of their own (llm.planner, llm.synthesis)
        self.planner_engine = ctx.engine_for("planner")
        self.synthesis_engine = ctx.engine_for("synthesis")
        self.planner: Planner = self.offline
        if self.planner_engine is not None:
            from podium.agents.orchestrator.planning.model import ModelPlanner

            self.planner = ModelPlanner(self.planner_engine, self.offline)
        self._store: Any = None
        self.workflows = WorkflowStore(ctx.redis, ctx.keys)
        self._told: set[str] = set()  # workflow problems already logged

    # -- A2A -----------------------------------------------------------------------------------------

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        if message is None:
            raise ValueError("the orchestrator needs a message")
        task = context.current_task or new_task_from_user_message(message)
        fresh = context.current_task is None
        if fresh:
            # the run is owed (lease and checkpoint stored) before the task is, so before any caller hears of it
            await accept(self.leases, self.checkpoints, context, task)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await Session(self.services(), context, task, updater, fresh=fresh).run()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()
            await self.checkpoints.save_status(context.task_id, RunStatus.FAILED)
            await self.leases.release(context.task_id)

    # -- what sessions use ---------------------------------------------------------------------------

    def services(self) -> Services:
        """What a session uses of this orchestrator."""
        return Services(
            name=self.ctx.name,
            settings=self.settings,
            registry=self.registry,
            checkpoints=self.checkpoints,
            leases=self.leases,
            breakers=self.breakers,
            delegator=self.delegator,
            policy=self.policy,
            planner=self.planner,
            workflows=self.workflows,
            synthesise=self.synthesise,
            task_state=self.task_state,
            open_trace=lambda task_id: Trace(self.ctx.redis, self.ctx.keys, task_id),
            ping=self.ctx.redis.ping,
        )

    async def plan(
        self, text: str, data: dict[str, Any], catalog: Catalog, spending: Spending, trace: TraceLog
    ) -> Plan:
        """A validated plan from the model planner (falling back to the offline one) or the offline one.

        Raises ``PlanError`` when no plan can be built from the agents alive."""
        return await self.planner.plan(text, data, catalog, spending=spending, trace=trace)

    async def synthesise(self, material: Material, spending: Spending, trace: TraceLog) -> Answer:
        if self.synthesis_engine is None or not material.sections:
            return offline_answer(material)
        from podium.agents.orchestrator.planning.model import model_answer

        return await model_answer(self.synthesis_engine, material, spending=spending, trace=trace)

    def estimate_cost(self, plan: Plan, spending: Spending) -> float:
        """A plan's cost in USD, roughly (``approval.estimatedCallUsd`` per call a step may make)."""
        return estimate_cost(plan, spending, self.settings.approval.estimated_call_usd)

    def approval_reason(self, catalog: Catalog) -> Any:
        """Why a step must wait for the caller's approval (None when it need not)."""
        return approval_reason(self.settings.approval, catalog)

    async def task_state(self, task_id: str) -> int | None:
        """The stored state of one of our tasks, whoever runs it."""
        return await stored_state(self.ctx.redis, self.ctx.keys, self.ctx.name, task_id)

    # -- the agent runtime's hooks -------------------------------------------------------------------

    async def serve(self, handler: Any) -> None:
        """Resume runs whose replica died and answer approvals that timed out, until cancelled."""
        period = max(0.2, self.settings.lease_s / 3)
        async with anyio.create_task_group() as tg:
            while True:
                try:
                    await self.offer_workflows()
                    for task_id in await self.leases.due():
                        if await self.leases.acquire(task_id):
                            tg.start_soon(self._resume, handler, task_id)
                except TRANSIENT as exc:
                    logger.warning("orchestrator resume loop: Redis unavailable (%s); retrying", exc)
                except Exception:  # the loop outlives odd runs; it logs and tries again
                    logger.exception("orchestrator resume loop failed; retrying")
                await anyio.sleep(period)

    async def offer_workflows(self) -> None:
        """Offer the workflows kept in the system as skills of this agent's card (served and registered)."""
        card = self.ctx.card
        signer = CardSigner.from_env() if card.signatures else None
        if card.signatures and signer is None:
            return  # a card signed elsewhere: changing it would break its signature
        workflows = await self.workflows.all()
        for problem in set(self.workflows.problems) - self._told:
            logger.warning("workflow skipped: %s", problem)
        self._told = set(self.workflows.problems)
        if not offer(card, workflows):
            return
        if signer is not None:
            card.CopyFrom(signer.sign(card))
        await self.registry.update_card(card)

    async def _resume(self, handler: Any, task_id: str) -> None:
        """Continue ``task_id`` by sending it a message through the A2A handler, as a caller would."""
        try:
            state = await self.checkpoints.load(task_id)
            stored = await self.task_state(task_id)
            if state is None or stored is None or stored in TERMINAL or state.status.ended:
                await self.leases.release(task_id)
                return
            why = (
                "approval timed out" if state.status == RunStatus.WAITING_APPROVAL else "its replica stopped"
            )
            logger.info("resuming task %s (%s)", task_id, why)
            message = Message(
                role=Role.ROLE_USER,
                message_id=f"resume-{task_id}-{uuid.uuid4().hex[:8]}",
                task_id=task_id,
                context_id=state.request.context_id,
                parts=[new_text_part(f"resume: {why}")],
            )
            message.metadata.update({RESUME_KEY: why})
            await handler.on_message_send(SendMessageRequest(message=message), system_context())
        except Exception:
            logger.exception("could not resume task %s; another replica may try later", task_id)

    def routes(self) -> list[Route]:
        """``GET /podium/trace/{task_id}``: a task's trace, for ``podium trace`` and the console when
        Redis is not reachable from outside (the embedded bus of ``podium up``)."""

        async def trace(request: Request) -> JSONResponse:
            task_id = request.path_params["task_id"]
            # A caller reads the traces of its own tasks only (admin: all); another's is "no trace" too.
            owner = await stored_owner(self.ctx.redis, self.ctx.keys, self.ctx.name, task_id)
            caller = request.scope["user"].display_name if "user" in request.scope else ""
            admin = ADMIN in getattr(request.scope.get("auth"), "scopes", ())
            mine = owner is not None and owner == caller
            entries = await read_trace(self.ctx.redis, self.ctx.keys, task_id) if admin or mine else []
            if not entries:
                return JSONResponse(
                    {"error": {"code": "not_found", "message": f"no trace for task {task_id}"}}, 404
                )
            return JSONResponse({"taskId": task_id, "entries": [e.dump() for e in entries]})

        return [Route("/podium/trace/{task_id}", trace, methods=["GET"])]

    async def aclose(self) -> None:
        await self.delegator.aclose()
        await self.bus.close()


def build(ctx: AgentContext) -> AgentExecutor:
    config = load_config(ctx.name)
    settings = load_settings(config.orchestrator, f"agents/config/{ctx.name}.json")
    return Orchestrator(ctx, settings)
