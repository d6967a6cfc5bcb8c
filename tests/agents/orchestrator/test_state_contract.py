"""One contract for the orchestrator's state, run against Redis (a real redis-server) and in memory:
runs and their checkpoints, leases between replicas, breakers, and the trace (the idea of LangGraph's
checkpoint conformance suite). Whatever the orchestrator is given must pass it."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from podium.agents.orchestrator.events import RunStatus, TraceEvent
from podium.agents.orchestrator.plan import parse_plan
from podium.agents.orchestrator.results import StepResult
from podium.agents.orchestrator.state.breakers import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breakers,
    BreakerStore,
    MemoryBreakers,
)
from podium.agents.orchestrator.state.checkpoints import (
    Checkpoints,
    CheckpointStore,
    MemoryCheckpoints,
    Request,
    RunState,
)
from podium.agents.orchestrator.state.leases import LeaseBook, Leases, LeaseStore, MemoryLeases
from podium.agents.orchestrator.state.trace import MemoryTrace, Trace, TraceEntry, TraceLog
from podium.bus.connection import connect
from podium.bus.keys import Keys

pytestmark = pytest.mark.anyio


@dataclass
class Backend:
    """Makes each state store on one backend; stores made by one backend share their data."""

    kind: str
    redis: Any = None
    keys: Keys | None = None
    book: LeaseBook | None = None
    traces: dict[str, list[TraceEntry]] | None = None
    memory_checkpoints: MemoryCheckpoints | None = None

    def checkpoints(self) -> CheckpointStore:
        if self.kind == "redis":
            assert self.keys is not None
            return Checkpoints(self.redis, self.keys)
        assert self.memory_checkpoints is not None
        return self.memory_checkpoints

    def leases(self, instance: str, lease_s: float = 15.0) -> LeaseStore:
        if self.kind == "redis":
            assert self.keys is not None
            return Leases(self.redis, self.keys, "orchestrator", instance, lease_s=lease_s)
        return MemoryLeases(instance, lease_s=lease_s, book=self.book)

    def breakers(self, **settings: Any) -> BreakerStore:
        if self.kind == "redis":
            assert self.keys is not None
            return Breakers(self.redis, self.keys, **settings)
        return MemoryBreakers(**settings)

    def trace(self, task_id: str) -> TraceLog:
        if self.kind == "redis":
            assert self.keys is not None
            return Trace(self.redis, self.keys, task_id)
        return MemoryTrace(task_id, self.traces)


@pytest.fixture(params=["redis", "memory"])
async def backend(request: pytest.FixtureRequest, redis_url: str, keys: Keys) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", book=LeaseBook(), traces={}, memory_checkpoints=MemoryCheckpoints())
        return
    client = connect(redis_url)
    yield Backend("redis", redis=client, keys=keys)
    await client.aclose()


def _task() -> str:
    return f"task-{uuid.uuid4().hex[:8]}"


async def _until(condition: Any) -> None:
    """Poll ``condition`` until it holds (bounded, never a timing threshold)."""
    with anyio.fail_after(20):
        for _ in itertools.count():
            if await condition():
                return
            await anyio.sleep(0.01)


# -- runs and checkpoints --------------------------------------------------------------------------


async def test_a_run_is_none_until_it_starts_then_round_trips(backend: Backend) -> None:
    store, task = backend.checkpoints(), _task()
    assert await store.load(task) is None
    await store.start(task, RunState(request=Request(text="what is podium", data={"k": 1}, context_id="c")))
    state = await backend.checkpoints().load(task)  # another replica's view
    assert state is not None and state.status is RunStatus.PLANNING
    assert (state.request.text, state.request.data, state.request.context_id) == (
        "what is podium",
        {"k": 1},
        "c",
    )
    assert state.plan is None and state.results == {} and state.approval is None


async def test_a_run_keeps_its_plan_steps_status_approval_and_usage(backend: Backend) -> None:
    store, task = backend.checkpoints(), _task()
    await store.start(task, RunState(request=Request(text="q")))
    plan = parse_plan({"steps": [{"id": "a", "call": {"skill": "research"}}]})
    await store.save_plan(task, plan)
    await store.save_step(task, StepResult(step="a", status="completed", output={"result": "r"}, agent="x"))
    await store.save_usage(task, {"tokens": 12.0, "spend": 0.5, "hops": 1.0})
    state = await store.load(task)
    assert state is not None and state.status is RunStatus.RUNNING and state.plan == plan
    assert state.results["a"].output == {"result": "r"} and state.results["a"].agent == "x"
    assert state.usage == {"tokens": 12.0, "spend": 0.5, "hops": 1.0}
    approval = {"asks": [{"step": "a"}], "decisions": {}, "deadline": 1.5, "default": "deny"}
    await store.save_status(task, RunStatus.WAITING_APPROVAL, approval)
    state = await store.load(task)
    assert state is not None and state.status is RunStatus.WAITING_APPROVAL and state.approval == approval
    await store.save_status(task, RunStatus.DONE)
    state = await store.load(task)
    assert state is not None and state.status.ended and state.approval == approval  # approval kept


# -- leases ------------------------------------------------------------------------------------------


async def test_one_replica_holds_a_run_until_it_releases_it(backend: Backend) -> None:
    a, b, task = backend.leases("a"), backend.leases("b"), _task()
    assert await a.acquire(task) and await a.acquire(task)  # taking one's own lease again keeps it
    assert not await b.acquire(task)
    assert await a.owner(task) == "a" and await b.owner(task) == "a"
    assert await a.renew([task]) == 1 and await b.renew([task]) == 0 and await a.renew([]) == 0
    await b.release(task)  # not b's to release
    assert await a.owner(task) == "a"
    await a.release(task)
    assert await a.owner(task) is None and task not in await a.due()
    assert await b.acquire(task) and await b.owner(task) == "b"


async def test_an_expired_lease_is_due_and_another_replica_takes_it(backend: Backend) -> None:
    a, b, task = backend.leases("a", lease_s=0.05), backend.leases("b"), _task()
    assert await a.acquire(task)

    async def due() -> bool:
        return task in await b.due()

    await _until(due)
    assert await b.acquire(task) and not await a.acquire(task)
    assert await a.renew([task]) == 0  # a's lease is gone


async def test_a_parked_run_has_no_owner_and_is_due_at_its_deadline(backend: Backend) -> None:
    a, b, task = backend.leases("a"), backend.leases("b"), _task()
    assert await a.acquire(task)
    await a.park(task, time.time() + 3600)
    assert await a.owner(task) is None and task not in await b.due()
    assert await b.acquire(task)  # parked: anyone may take it (the caller answered)
    await b.park(task, time.time() - 1)
    assert task in await a.due()
    later = _task()
    assert await a.acquire(later)
    await a.park(later, time.time() - 2)
    assert (await a.due(limit=1)) == [later]  # the earliest deadline first


# -- breakers ----------------------------------------------------------------------------------------


async def test_a_breaker_opens_after_the_threshold_and_a_success_closes_it(backend: Backend) -> None:
    breakers = backend.breakers(threshold=2, cooldown_s=3600)
    agent = f"agent-{uuid.uuid4().hex[:6]}"
    assert await breakers.allow(agent) == (True, CLOSED)
    first = await breakers.failure(agent)
    assert (first.before, first.after, first.failures, first.changed) == (CLOSED, CLOSED, 1, False)
    second = await breakers.failure(agent)
    assert (second.after, second.changed) == (OPEN, True)
    assert await breakers.allow(agent) == (False, OPEN)
    states = await breakers.states([agent, "never-called"])
    assert states[agent]["state"] == OPEN and states[agent]["failures"] == 2 and states[agent]["openedAt"]
    assert states["never-called"] == {"state": CLOSED, "failures": 0, "openedAt": None}
    closed = await breakers.success(agent)
    assert (closed.before, closed.after) == (OPEN, CLOSED)
    assert await breakers.allow(agent) == (True, CLOSED)


async def test_after_the_cooldown_one_probe_goes_out_and_its_failure_reopens(backend: Backend) -> None:
    breakers = backend.breakers(threshold=1, cooldown_s=0.05, probe_s=3600)
    agent = f"agent-{uuid.uuid4().hex[:6]}"
    await breakers.failure(agent)
    probes: list[tuple[bool, str]] = []

    async def probing() -> bool:
        probes.append(await breakers.allow(agent))
        return probes[-1][0]

    await _until(probing)
    assert probes[-1] == (True, HALF_OPEN)
    assert await breakers.allow(agent) == (False, HALF_OPEN)  # one probe at a time
    reopened = await breakers.failure(agent)
    assert (reopened.before, reopened.after) == (HALF_OPEN, OPEN)


# -- the trace ---------------------------------------------------------------------------------------


async def test_a_trace_keeps_every_entry_in_order_and_tells_its_listeners(backend: Backend) -> None:
    task = _task()
    trace, heard = backend.trace(task), []
    trace.listeners.append(heard.append)
    await trace.record(TraceEvent.PLAN, state="2 steps", reason="planned")
    await trace.record(TraceEvent.STEP, step="a", state="completed", agent="x", duration_ms=250.0)
    await trace.record(TraceEvent.ANSWER, state="complete", data={"sections": 1})
    assert [e.event for e in heard] == ["plan", "step", "answer"]
    await trace.drain()
    kept = await backend.trace(task).entries()  # another replica's view
    assert [e.dump() for e in kept] == [e.dump() for e in heard]
    assert kept[1].line() == "step a completed → x (0.25s)"
    assert await backend.trace(_task()).entries() == []
