"""The chaos run: 100 concurrent requests through two orchestrator replicas over the bus, while specialist
replicas are SIGKILLed at random (and started again), one orchestrator is SIGKILLed once, and Redis
(append-only, fsync always) is restarted once. Every task must reach a terminal state, none may be lost,
and no step may act twice (each worker records its effect keyed by its task, as executors must).

The numbers are printed (run with ``-s`` to see them) and written to ``chaos.json`` in the test's folder;
``CHAOS_DEBUG=1`` also prints the orchestrators' errors.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from a2a.client.client import ClientCallContext
from a2a.helpers.proto_helpers import new_data_part, new_text_message
from a2a.types.a2a_pb2 import GetTaskRequest, Role, SendMessageRequest, TaskState

from podium.agents.host.handler import task_id_for
from tests.agents.orchestrator.cluster import Cluster, status_text
from tests.support import RedisServer

pytestmark = pytest.mark.anyio

TASKS = 100
WORKERS = ("counter-1", "counter-2", "counter-3")
CLAIM = ("--claim-idle-ms", "3000")
TERMINAL = {TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED,
            TaskState.TASK_STATE_REJECTED}  # fmt: skip


def request(i: int) -> Any:
    message = new_text_message(f"chaos {i}", role=Role.ROLE_USER)
    plan = {"steps": [
        {"id": "a", "call": {"skill": "count", "text": f"t{i} a", "metadata": {"delay_s": 0.5}}},
        {"id": "b", "call": {"skill": "count", "text": f"t{i} b", "metadata": {"delay_s": 0.5}}, "dependsOn": ["a"]},
    ], "answer": ["a", "b"]}  # fmt: skip
    message.parts.append(new_data_part({"plan": plan}))
    return message


@pytest.mark.timeout(600)
async def test_chaos(killable_redis: RedisServer, tmp_path: Path) -> None:
    cluster = Cluster(
        killable_redis.url, f"t{uuid.uuid4().hex[:12]}", tmp_path / "home", orchestrator={"leaseS": 2}
    )
    cluster.add_worker("counter")
    kills: Counter[str] = Counter()
    outcome: dict[int, Any] = {}
    messages = {i: request(i) for i in range(TASKS)}
    try:
        for name in WORKERS:
            cluster.start("counter", instance=name, args=CLAIM)
        cluster.start("orchestrator", instance="orch-1", args=CLAIM)
        cluster.start("orchestrator", instance="orch-2", args=CLAIM)
        started = time.monotonic()

        async def caller(client: Any, i: int) -> None:
            try:
                context = ClientCallContext(timeout=240)
                async for event in client.send_message(
                    SendMessageRequest(message=messages[i]), context=context
                ):
                    outcome[i] = event.task.status.state
            except Exception as exc:  # noted; the task is still checked below
                outcome[i] = f"{type(exc).__name__}: {exc}"

        starting: set[str] = set()

        async def restart(name: str, instance: str) -> None:
            starting.add(instance)
            try:
                for attempt in range(5):  # a start can fail while Redis itself is restarting
                    try:
                        await anyio.to_thread.run_sync(
                            partial(cluster.start, name, instance=instance, args=CLAIM)
                        )
                        return
                    except RuntimeError:
                        if attempt == 4:
                            raise
                        await anyio.sleep(1)
            finally:
                starting.discard(instance)

        async def chaos(done: anyio.Event) -> None:
            rng = random.Random(7)
            redis_restarted = orchestrator_killed = False
            async with anyio.create_task_group() as restarts:
                while not done.is_set():
                    await anyio.sleep(1.0)
                    alive = [w for w in WORKERS if w not in starting and cluster.procs[w].proc.alive()]
                    if len(alive) > 1:  # keep one replica up, so the work goes on meanwhile
                        victim = rng.choice(alive)
                        cluster.procs[victim].proc.kill()
                        kills[victim] += 1
                        restarts.start_soon(restart, "counter", victim)
                    if not orchestrator_killed and time.monotonic() - started > 3:
                        orchestrator_killed = True
                        cluster.procs["orch-1"].proc.kill()
                        kills["orch-1"] += 1
                        restarts.start_soon(restart, "orchestrator", "orch-1")
                    if not redis_restarted and time.monotonic() - started > 6:
                        redis_restarted = True
                        await anyio.to_thread.run_sync(killable_redis.restart)
                        kills["redis restarts"] += 1

        async with cluster.client(
            "redis-streams", url=cluster.procs["orch-2"].url, streaming=False
        ) as client:
            done = anyio.Event()
            async with anyio.create_task_group() as chaos_group:
                chaos_group.start_soon(chaos, done)
                async with anyio.create_task_group() as callers:
                    for i in range(TASKS):
                        callers.start_soon(caller, client, i)
                done.set()
        # every task, whatever its caller saw, asked of an orchestrator that is up
        states: dict[int, Any] = {}
        reasons: Counter[str] = Counter()
        async with cluster.client(url=cluster.procs["orch-2"].url) as client:
            for i, message in messages.items():
                task_id = task_id_for("orchestrator", message.message_id, "bus:test")
                last = "never read"
                with anyio.move_on_after(120):
                    while True:
                        try:
                            task = await client.get_task(GetTaskRequest(id=task_id))
                        except Exception as exc:
                            states[i] = f"lost ({type(exc).__name__})"
                            break
                        last = f"{TaskState.Name(task.status.state)}: {status_text(task)[:200]}"
                        if task.status.state in TERMINAL:
                            states[i] = TaskState.Name(task.status.state)
                            if task.status.state != TaskState.TASK_STATE_COMPLETED:
                                reasons[status_text(task)[:160]] += 1
                            break
                        await anyio.sleep(0.5)
                if i not in states:
                    states[i] = f"lost (not finished after 120 s; last seen {last})"
                    print(f"chaos: task t{i} {task_id} not finished: {last}")
        effects = await cluster.effects([f"t{i} {s}" for i in range(TASKS) for s in "ab"])
        for text in (t for t, n in effects.items() if n > 1):  # how it came to run twice: the decisions
            i = int(text.split()[0][1:])
            print(f"chaos: {text!r} ran {effects[text]} times; task t{i}'s trace:")
            for entry in await cluster.trace(task_id_for("orchestrator", messages[i].message_id, "bus:test")):
                print("   ", entry.line())
        if os.environ.get("CHAOS_DEBUG"):  # the orchestrators' errors, to see why a task failed
            for key, proc in [
                *cluster.procs.items(),
                *((f"{p.instance} (killed)", p) for p in cluster.retired),
            ]:
                if key.startswith(("orch", "counter")):
                    out = proc.proc.output()
                    for block in out.split("\n20"):
                        if "Traceback" in block or "ERROR" in block or "failed" in block.lower():
                            print(f"--- {key}:", block[:3000])
    finally:
        cluster.close()
    tally = Counter(states.values())
    twice = {k: v for k, v in effects.items() if v > 1}
    report = {
        "tasks": TASKS,
        "kills": dict(kills),
        "completed": tally.get("TASK_STATE_COMPLETED", 0),
        "failed": {
            k: v for k, v in tally.items() if k != "TASK_STATE_COMPLETED" and not str(k).startswith("lost")
        },
        "failure_reasons": dict(reasons),
        "lost": sum(v for k, v in tally.items() if str(k).startswith("lost")),
        "steps_run_twice": len(twice),
        "callers_with_errors": sum(1 for v in outcome.values() if isinstance(v, str)),
        "caller_errors": sorted({v[:160] for v in outcome.values() if isinstance(v, str)}),
        "seconds": round(time.monotonic() - started, 1),
    }
    (tmp_path / "chaos.json").write_text(json.dumps(report, indent=2))
    print("chaos run:", json.dumps(report))
    assert report["lost"] == 0 and len(states) == TASKS, report
    assert not twice, twice
    assert kills["orch-1"] == 1 and kills["redis restarts"] == 1 and sum(kills[w] for w in WORKERS) >= 3, (
        report
    )
    done_both = [i for i, s in states.items() if s == "TASK_STATE_COMPLETED"]
    assert all(effects[f"t{i} a"] == 1 and effects[f"t{i} b"] == 1 for i in done_both)
