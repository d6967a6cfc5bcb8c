"""Agents with controlled behaviour for the orchestrator's end-to-end tests, run as real ``podium agent``
processes (their config names this module as the executor; the behaviour comes from the agent's name).

- ``contrarian``: a calculator that evaluates the task's arithmetic exactly and reports one more than the
  true value — the voter that disagrees;
- ``flaky``: fails the first ``FLAKY_FAILS`` runs of each distinct input, then echoes it;
- ``failing``: always fails; ``hanging``: never answers (until cancelled);
- ``ping`` / ``pong``: each rejects the task naming the other;
- ``breakable``: fails while ``{ns}:test:broken:<agent>`` is set in Redis, echoes otherwise;
- ``counter`` (and any other name): echoes.
Every run is counted in ``{ns}:test:runs`` (hash: "<agent>|<input>" -> runs), so a test can prove no step
ran twice; a ``delay_s`` number in the message metadata makes any of them wait first.
"""

from __future__ import annotations

import asyncio
import os

from a2a.helpers.proto_helpers import new_data_part, new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.tasks.task_updater import TaskUpdater

from podium.agents.host.context import AgentContext
from podium.agents.text import quantities
from podium.bus.backoff import through_outages
from podium.mcp_servers import arith

FLAKY_FAILS = int(os.environ.get("FLAKY_FAILS", "2"))
OTHER = {"ping": "pong", "pong": "ping"}


class Worker(AgentExecutor):
    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.kind = ctx.name.split("-")[0]

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        text = context.get_user_input()
        metadata = dict(context.message.metadata) if context.message.HasField("metadata") else {}
        delay = float(metadata.get("delay_s") or 0)
        if delay:
            await asyncio.sleep(delay)
        redis, ns = self.ctx.redis, self.ctx.keys.namespace
        runs = await through_outages(lambda: redis.hincrby(f"{ns}:test:runs", f"{self.ctx.name}|{text}", 1))
        # the effect of this step, keyed by its task as the README asks of executors: a step run again
        # for the same task (a redelivery) adds nothing; the same step sent as a new task would
        await through_outages(lambda: redis.sadd(f"{ns}:test:effects:{text}", task.id))
        if self.kind == "contrarian":
            computation = quantities.find(text)
            if computation is None or computation.tool != "evaluate":
                await updater.reject(
                    updater.new_agent_message([new_text_part("contrarian: nothing to compute")])
                )
                return
            value = float(arith.evaluate(computation.arguments["expression"]).value) + 1
            result = f"{computation.label} = {value:g}"
            await updater.add_artifact(
                [new_text_part(result), new_data_part({"value": value, "result": result})]
            )
            await updater.complete()
        elif self.kind == "flaky" and runs <= FLAKY_FAILS:
            await updater.failed(
                updater.new_agent_message([new_text_part(f"flaky: failure {runs} of {FLAKY_FAILS}")])
            )
        elif self.kind == "breakable" and await self.ctx.redis.exists(
            f"{self.ctx.keys.namespace}:test:broken:{self.ctx.name}"
        ):
            await updater.failed(
                updater.new_agent_message([new_text_part(f"{self.ctx.name}: broken for now")])
            )
        elif self.kind == "failing":
            await updater.failed(
                updater.new_agent_message([new_text_part("failing: this agent always fails")])
            )
        elif self.kind == "hanging":
            await asyncio.sleep(3600)
        elif self.kind in OTHER:
            other = OTHER[self.kind]
            await updater.reject(
                updater.new_agent_message(
                    [
                        new_text_part(f"{self.ctx.name}: not mine, ask {other}"),
                        new_data_part({"suggestedAgent": other}),
                    ]
                )
            )
        else:
            data = {"echo": text, "runs": runs, "agent": self.ctx.name}
            spent = int(float(metadata.get("usage_tokens") or 0))
            if spent:  # as a model-backed agent reports what its model calls spent
                data["usage"] = {"inputTokens": spent, "outputTokens": 0}
            await updater.add_artifact([new_text_part(text), new_data_part(data)])
            await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def build(ctx: AgentContext) -> AgentExecutor:
    return Worker(ctx)
