"""Accepting a new orchestration: making it owed before anyone is told it exists.

A non-blocking send (``returnImmediately``) is answered with the task as soon as the A2A request handler
has stored it — a2a-sdk's event consumer saves the executor's first ``Task`` event and only then hands it to
the request waiting on it, which replies. A stored task is not yet a run anyone will finish, though: a
replica resumes only runs that hold a lease (``state.leases``) and a checkpoint (``state.checkpoints``).
When those were first written by the run itself, a SIGKILL between the reply and that first write left a
task with an id in the caller's hands, SUBMITTED in Redis, and nothing that would ever continue it.

So the executor calls :func:`accept` *before* it enqueues the new task: the lease (held by this replica,
expiring unless renewed) and the checkpoint with the caller's request are in Redis first. Killed after
that, the lease comes due and any replica, this one restarted included, resumes the run from the
checkpoint and finishes the task; killed before the task is stored, the resume finds no task and lets the
lease go (the caller got no task id: nothing was promised). The same holds over the bus: its request entry
is acked after the handler replies, which is after the task and its run are stored.
"""

from __future__ import annotations

from a2a.server.agent_execution import RequestContext
from a2a.types.a2a_pb2 import Task

from podium.agents.orchestrator.request import BadRequest, read_request
from podium.agents.orchestrator.state.checkpoints import CheckpointStore, RunState
from podium.agents.orchestrator.state.leases import LeaseStore
from podium.bus.backoff import through_outages

# How long accepting waits for Redis: the caller is waiting for an answer; failing here fails the request
# before any task exists (it gets an error, not a task id that would lead nowhere).
ACCEPT_OUTAGE_S = 5.0


async def accept(
    leases: LeaseStore, checkpoints: CheckpointStore, context: RequestContext, task: Task
) -> None:
    """Make the new ``task``'s run resumable by any replica: take its lease and checkpoint its request.

    Does nothing for a request that cannot be orchestrated (the run fails it at once, nothing to resume) or
    whose lease another live replica holds (the same message reached it too: that replica's run is the
    one). Raises ``redis.RedisError`` when Redis stays away longer than ``ACCEPT_OUTAGE_S``."""
    try:
        request = read_request(context, task.context_id)
    except BadRequest:
        return
    if not await through_outages(lambda: leases.acquire(task.id), within=ACCEPT_OUTAGE_S):
        return
    if await through_outages(lambda: checkpoints.load(task.id), within=ACCEPT_OUTAGE_S) is None:
        state = RunState(request=request)
        await through_outages(lambda: checkpoints.start(task.id, state), within=ACCEPT_OUTAGE_S)
