"""The same bus, task store and agent on a real 3-node Redis Cluster (hash tags keep multi-key work in
one slot). Skipped where redis-server or redis-cli is missing."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import anyio
import pytest
import redis
from a2a.server.cluster import TaskVersion
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import GetTaskRequest, ListTasksRequest, Task, TaskState, TaskStatus
from redis.exceptions import ResponseError

from bus import Envelope, Keys, connect
from bus.a2a_client import BusClient
from bus.autopipeline import AutoPipeline
from bus.consumer import Consumer, Delivery
from bus.streams import StreamBus
from bus.task_store import RedisTaskStore
from tests.agents.agent_procs import AgentProc, fetch_card, make_client, text_request
from tests.support import REDIS_SERVER, free_port, wait_until

REDIS_CLI = shutil.which("redis-cli")
pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None or REDIS_CLI is None,
    reason="needs redis-server and redis-cli (apt-get install redis-server)",
)


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    assert REDIS_SERVER and REDIS_CLI
    ports = [free_port() for _ in range(3)]
    workdir = tempfile.mkdtemp(prefix="podium-cluster-")
    procs = [_node(port, workdir) for port in ports]
    try:
        for p in ports:
            wait_until(lambda p=p: _pings(p), timeout=10, what=f"cluster node {p}")
        nodes = [f"127.0.0.1:{p}" for p in ports]
        create = [REDIS_CLI, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=30)
        wait_until(lambda: all(_cluster_ok(p) for p in ports), timeout=20, what="cluster_state:ok")
        yield f"redis+cluster://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _node(port: int, workdir: str) -> subprocess.Popen[bytes]:
    assert REDIS_SERVER
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
            "--cluster-port", str(free_port()),  # the default (port + 10000) may not exist
            "--cluster-config-file", f"nodes-{port}.conf", "--dir", workdir, "--save", "", "--appendonly", "no"]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _pings(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_connect_timeout=0.2) as c:
            return bool(c.ping())
    except redis.RedisError:
        return False


def _cluster_ok(port: int) -> bool:
    with redis.Redis(port=port) as c:
        return c.execute_command("CLUSTER INFO").get("cluster_state") == "ok"


@pytest.mark.anyio
async def test_bus_and_task_store_on_a_cluster(cluster_url: str) -> None:
    client = connect(cluster_url)
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    bus = StreamBus(client, keys)
    handled: list[int] = []

    async def handler(env: Envelope, delivery: Delivery) -> None:
        if env.payload.get("fail"):
            raise RuntimeError("boom")
        handled.append(env.payload["i"])

    consumer = Consumer(bus, "worker", handler, consumer="c1", max_deliveries=2, retry_backoff_ms=10)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(consumer.run)
            await bus.publish_many(
                keys.inbox("worker"), [Envelope(method="X", payload={"i": i}) for i in range(30)]
            )
            await bus.publish(keys.inbox("worker"), Envelope(method="X", payload={"fail": True}))
            with anyio.fail_after(20):
                while len(handled) < 30 or consumer.dead_lettered < 1:  # noqa: ASYNC110 - polling counters
                    await anyio.sleep(0.02)
            await consumer.stop()
        assert sorted(handled) == list(range(30))
        assert [d.error for d in await bus.dlq_list("worker")] == ["RuntimeError: boom"]
        assert await bus.dlq_replay("worker") == 1

        store, ctx = RedisTaskStore(client, keys), ServerCallContext()
        task = Task(id="t1", context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
        version = await store.save(task, event=task, prev_version=TaskVersion.MISSING, context=ctx)
        stored = await store.get("t1", ctx)
        assert stored is not None and stored.version == version
        assert (await store.list(ListTasksRequest(), ctx)).total_size == 1
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_an_agent_serves_over_the_bus_on_a_cluster(cluster_url: str) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}"
    agent = AgentProc("echo", cluster_url, namespace, "cl-1").wait_ready()
    client = connect(cluster_url)
    try:
        card = await fetch_card(agent.url)
        async with BusClient(client, Keys(namespace)) as bus:
            a2a = make_client(card, "redis-streams", bus=bus, streaming=False)
            with anyio.fail_after(30):
                events = [ev async for ev in a2a.send_message(text_request("over the cluster"))]
                task = events[-1].task
                assert task.status.state == TaskState.TASK_STATE_COMPLETED
                assert task.artifacts[0].parts[0].text == "over the cluster"
                assert (await a2a.get_task(GetTaskRequest(id=task.id))).id == task.id
            await a2a.close()
    finally:
        await client.aclose()
        agent.close()


@pytest.mark.anyio
async def test_the_auto_pipeline_on_a_cluster_keeps_each_callers_reply(cluster_url: str) -> None:
    client = connect(cluster_url)
    ns = f"t{uuid.uuid4().hex[:8]}"
    pipe = AutoPipeline(client)
    try:
        # Keys in 30 slots spread over the three nodes, a failing command and a script: one turn's commands.
        await client.set(f"{ns}:{{s0}}:text", "not a number")
        script = pipe.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        incrs = [pipe.incr(f"{ns}:{{s{i}}}:n") for i in range(30)]
        bad = pipe.incr(f"{ns}:{{s0}}:text")
        again = [pipe.incr(f"{ns}:{{s{i}}}:n") for i in range(30)]
        assert await asyncio.gather(*incrs) == [1] * 30 and await asyncio.gather(*again) == [2] * 30
        with pytest.raises(ResponseError, match="not an integer"):
            await bad
        assert (pipe.pipelines, pipe.commands) == (1, 61)  # one pipeline, split per node by redis-py
        scripted = await asyncio.gather(*(script(keys=[f"{ns}:{{s{i}}}:n"], args=[10]) for i in range(30)))
        assert scripted == [12] * 30  # NOSCRIPT on each node, loaded on every node, then run
        nodes = {client.get_node_from_key(f"{ns}:{{s{i}}}:n").name for i in range(30)}
        assert len(nodes) == 3
    finally:
        await client.aclose()
