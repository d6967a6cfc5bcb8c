"""Durable orchestration: an orchestrator killed with SIGKILL in the middle of a plan — restarted, or not
— and its run is continued from the checkpoint by a replica, for requests that came over HTTP (whose
caller's connection died with the process) and over the bus. The worker counts its runs per input:
no step runs twice, even the one in flight when the orchestrator died (its repeated delegation carries
the same idempotency key, and the worker's handler waits for the task it already has)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import GetTaskRequest, Role, SendMessageRequest, Task, TaskState

from podium.bus.connection import connect
from tests.agents.orchestrator.cluster import Cluster, answer_of, status_text
from tests.support import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(redis_server.url, f"t{uuid.uuid4().hex[:12]}", tmp_path, orchestrator={"leaseS": 2})
    c.add_worker("counter")
    try:
        c.start("counter")
        yield c
    finally:
        c.close()


def chain(tag: str) -> dict[str, Any]:
    """Three steps in a row; the second takes 3 s, so a kill lands while it is in flight."""
    return {
        "plan": {
            "steps": [
                {"id": "s1", "call": {"skill": "count", "text": f"{tag} one"}},
                {"id": "s2", "call": {"skill": "count", "text": f"{tag} two", "metadata": {"delay_s": 3}},
                 "dependsOn": ["s1"]},
                {"id": "s3", "call": {"skill": "count", "text": f"{tag} three"}, "dependsOn": ["s2"]},
            ],
            "answer": ["s1", "s2", "s3"],
        }
    }  # fmt: skip


async def start_and_kill(
    cluster: Cluster, victim: str, tag: str, binding: str = "JSONRPC"
) -> tuple[str, Any]:
    """Ask ``victim`` to run the chain, SIGKILL it once step s2 is in flight; returns the task id and
    the task group that still holds the caller (over the bus, the caller keeps waiting)."""
    message = new_text_message(tag, role=Role.ROLE_USER)
    message.parts.append(new_data_part(chain(tag)))
    found: dict[str, Any] = {}

    async def caller() -> None:
        async with cluster.client(binding, url=cluster.procs[victim].url) as client:
            try:
                async for event in client.send_message(SendMessageRequest(message=message)):
                    if event.HasField("task"):
                        found["id"] = event.task.id
                    if event.HasField("status_update"):
                        found.setdefault("id", event.status_update.task_id)
                found["final"] = await client.get_task(GetTaskRequest(id=found["id"]))
            except Exception as exc:  # over HTTP the connection dies with the orchestrator
                found["error"] = exc

    return found, caller


async def wait_for_step(cluster: Cluster, found: dict[str, Any], step: str) -> None:
    with anyio.fail_after(60):
        while True:
            if "id" in found:
                entries = await cluster.trace(found["id"])
                if any(e.event == "handoff" and e.step == step for e in entries):
                    return
            await anyio.sleep(0.05)


async def final_task(cluster: Cluster, task_id: str, url: str) -> Task:
    async with cluster.client(url=url) as client:
        with anyio.fail_after(90):
            while True:
                task = await client.get_task(GetTaskRequest(id=task_id))
                if task.status.state in (TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED):
                    return task
                await anyio.sleep(0.2)


async def check_no_step_ran_twice(cluster: Cluster, task: Task, tag: str) -> None:
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, status_text(task)
    runs = await cluster.runs()
    assert [runs.get(f"counter|{tag} {n}") for n in ("one", "two", "three")] == [1, 1, 1], runs
    text, _ = answer_of(task)
    assert f"{tag} one" in text and f"{tag} three" in text
    entries = await cluster.trace(task.id)
    [resume] = [e for e in entries if e.event == "resume" and "already done" in e.reason]
    assert "1 of 3 steps already done: s1" in resume.reason
    assert len([e for e in entries if e.event == "handoff" and e.step == "s1"]) == 1


async def test_a_killed_orchestrator_resumes_its_http_task_when_restarted(cluster: Cluster) -> None:
    [first] = cluster.start("orchestrator", instance="orch-a")
    found, caller = await start_and_kill(cluster, "orch-a", "restart")
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await wait_for_step(cluster, found, "s2")
        first.proc.kill()
    [again] = cluster.start("orchestrator", instance="orch-a")  # the same instance, restarted
    task = await final_task(cluster, found["id"], again.url)
    await check_no_step_ran_twice(cluster, task, "restart")


async def test_another_replica_resumes_the_task_of_a_killed_one(cluster: Cluster) -> None:
    first, second = (
        cluster.start("orchestrator", instance="orch-b1")[0],
        cluster.start("orchestrator", instance="orch-b2")[0],
    )
    found, caller = await start_and_kill(cluster, "orch-b1", "replica")
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await wait_for_step(cluster, found, "s2")
        first.proc.kill()
    task = await final_task(cluster, found["id"], second.url)  # the caller asks the other replica
    await check_no_step_ran_twice(cluster, task, "replica")
    resumed = [e for e in await cluster.trace(task.id) if e.event == "resume"]
    assert resumed and "its replica stopped" in resumed[0].reason


async def test_a_bus_caller_gets_its_answer_after_the_orchestrator_dies(cluster: Cluster) -> None:
    # a short claim time, so the orphaned request is redelivered to the other replica too: both paths
    # (the lease and the redelivery) meet on one task and the step still runs once
    args = ("--claim-idle-ms", "4000")
    cluster.start("orchestrator", instance="orch-c1", args=args)
    cluster.start("orchestrator", instance="orch-c2", args=args)
    found, caller = await start_and_kill(cluster, "orch-c1", "bus", binding="redis-streams")
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await wait_for_step(cluster, found, "s2")
        # either replica may have taken the request from the shared inbox: kill the one running it
        redis = connect(cluster.redis_url)
        owner = (await redis.hget(f"{cluster.namespace}:runs:{{orchestrator}}:owners", found["id"])).decode()
        await redis.aclose()
        cluster.procs[owner].proc.kill()
    assert "error" not in found, found.get("error")  # the bus caller was answered, not left hanging
    await check_no_step_ran_twice(cluster, found["final"], "bus")
