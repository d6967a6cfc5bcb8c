"""A task id handed to a caller is a promise: the task finishes even when the orchestrator that accepted it
is SIGKILLed right after answering. The orchestrator (``held``, see tests/agents/orchestrator/held.py)
stops still the moment it hands the new task to the request handler, the caller's non-blocking send
(``returnImmediately``) is answered with the task, and the process is killed on that answer: before the
fix, nothing durable said a run was owed (no lease, no checkpoint), so no replica ever resumed it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import (
    GetTaskRequest,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    Task,
    TaskState,
)

from tests.agents.orchestrator.cluster import Cluster, answer_of, status_text
from tests.agents.orchestrator.held import HOLD
from tests.support import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(redis_server.url, f"t{uuid.uuid4().hex[:12]}", tmp_path, orchestrator={"leaseS": 2})
    config = json.loads((c.configs / "orchestrator.json").read_text())
    (c.configs / "orchestrator.json").write_text(
        json.dumps({**config, "executor": "tests.agents.orchestrator.held"})
    )
    c.add_worker("counter")
    try:
        c.start("counter")
        yield c
    finally:
        c.close()


async def send_without_waiting(cluster: Cluster, binding: str, url: str, tag: str) -> Task:
    """A non-blocking SendMessage of a one-step plan; the task it was answered with."""
    message = new_text_message(tag, role=Role.ROLE_USER)
    message.parts.append(
        new_data_part({"plan": {"steps": [{"id": "s1", "call": {"skill": "count", "text": tag}}]}})
    )
    request = SendMessageRequest(
        message=message, configuration=SendMessageConfiguration(return_immediately=True)
    )
    async with cluster.client(binding, url=url, streaming=False) as client:
        with anyio.fail_after(60):
            async for event in client.send_message(request):
                if event.HasField("task"):
                    return event.task
    raise AssertionError("the send was not answered with a task")


async def finished(cluster: Cluster, task_id: str, url: str) -> Task:
    async with cluster.client(url=url) as client:
        with anyio.fail_after(60):
            while True:
                task = await client.get_task(GetTaskRequest(id=task_id))
                if task.status.state in (TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED):
                    return task
                await anyio.sleep(0.2)


@pytest.mark.parametrize("binding", ["JSONRPC", "redis-streams"])
async def test_a_task_answered_without_waiting_survives_a_kill_right_after_the_answer(
    cluster: Cluster, binding: str
) -> None:
    [held] = cluster.start("orchestrator", instance="orch-a", env={HOLD: "1"})
    tag = f"accepted {binding}"
    task = await send_without_waiting(cluster, binding, held.url, tag)
    held.proc.kill()  # on the answer: the run has not gone one step further
    assert task.status.state == TaskState.TASK_STATE_SUBMITTED
    [again] = cluster.start("orchestrator", instance="orch-a")  # restarted, not held
    done = await finished(cluster, task.id, again.url)
    assert done.status.state == TaskState.TASK_STATE_COMPLETED, status_text(done)
    assert tag in answer_of(done)[0]
    assert (await cluster.runs()).get(f"counter|{tag}") == 1
