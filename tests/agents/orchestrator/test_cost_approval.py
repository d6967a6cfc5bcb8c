"""A plan whose estimated cost is over the configured limit waits for the caller's approval before
anything runs: declined, nothing runs and the task is cancelled; approved, it runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import GetTaskRequest, Role, SendMessageRequest, TaskState

from tests.agents.orchestrator.cluster import Cluster, status_text
from tests.support import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(
        redis_server.url,
        f"t{uuid.uuid4().hex[:12]}",
        tmp_path,
        orchestrator={"approval": {"costLimitUsd": 0.015, "estimatedCallUsd": 0.01}},
    )
    c.add_worker("counter")
    try:
        c.start("counter", "orchestrator")
        yield c
    finally:
        c.close()


async def test_a_plan_over_the_cost_limit_waits_for_approval(cluster: Cluster) -> None:
    async with cluster.client() as client:
        for answer, tag in (("reject", "declined"), ("approve", "approved")):
            message = new_text_message(tag, role=Role.ROLE_USER)
            message.parts.append(
                new_data_part(
                    {
                        "plan": {
                            "steps": [
                                {"id": "a", "call": {"skill": "count", "text": f"{tag} a"}},
                                {"id": "b", "call": {"skill": "count", "text": f"{tag} b"}},
                            ]
                        }
                    }
                )
            )
            events = [e async for e in client.send_message(SendMessageRequest(message=message))]
            task = await client.get_task(GetTaskRequest(id=events[0].task.id))
            assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, status_text(task)
            assert "estimated cost $0.02 is over the limit of $0.015" in status_text(task)
            assert not [k for k in await cluster.runs() if tag in k]  # nothing ran yet
            reply = new_text_message(answer, role=Role.ROLE_USER, task_id=task.id, context_id=task.context_id)
            [_ async for _ in client.send_message(SendMessageRequest(message=reply))]
            task = await client.get_task(GetTaskRequest(id=task.id))
            runs = await cluster.runs()
            if answer == "reject":
                assert (
                    task.status.state == TaskState.TASK_STATE_CANCELED
                    and "declined the plan" in status_text(task)
                )
                assert not [k for k in runs if tag in k]
            else:
                assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
                assert runs[f"counter|{tag} a"] == 1 and runs[f"counter|{tag} b"] == 1
