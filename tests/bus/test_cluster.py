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

from podium.bus import Envelope, Keys, connect
from podium.bus.a2a_client import BusClient
from podium.bus.autopipeline import AutoPipeline
from podium.bus.consumer import Consumer, Delivery
from podium.bus.streams import StreamBus
from podium.bus.task_store import RedisTaskStore
from tests.agents.agent_procs import AgentProc, fetch_card, make_client, text_request
from tests.support import CI, REDIS_SERVER, free_port, wait_until

REDIS_CLI = shutil.which("redis-cli")
pytestmark = pytest.mark.skipif(
    (REDIS_SERVER is None or REDIS_CLI is None) and not CI,
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


def _node(port: int, workdir: str, *extra: str) -> subprocess.Popen[bytes]:
    assert REDIS_SERVER
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
            "--cluster-port", str(free_port()),  # the default (port + 10000) may not exist
            "--cluster-config-file", f"nodes-{port}.conf", "--dir", workdir, "--save", "", "--appendonly", "no", *extra]  # fmt: skip
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

        store, ctx = RedisTaskStore(client, keys, "agent"), ServerCallContext()
        task = Task(id="t1", context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
        version = await store.save(task, event=task, prev_version=TaskVersion.MISSING, context=ctx)
        stored = await store.get("t1", ctx)
        assert stored is not None and stored.version == version
        for other in ("t2", "t3", "t4"):  # tasks in other slots: ListTasks reads across the nodes
            task = Task(id=other, context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
            await store.save(task, event=task, prev_version=TaskVersion.MISSING, context=ctx)
        listed = await store.list(ListTasksRequest(), ctx)
        assert sorted(t.id for t in listed.tasks) == ["t1", "t2", "t3", "t4"]
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


def _node_of(port: int, slot: int) -> tuple[str, str, int]:
    """(node id, host, port) of the primary serving ``slot``, as ``port``'s node sees the cluster."""
    with redis.Redis(port=port) as c:
        for start, end, primary, *_ in c.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                host, node_port, node_id = primary[0], primary[1], primary[2]
                return _text(node_id), _text(host), int(node_port)
    raise LookupError(slot)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _port(address: str) -> int:
    """The client port in a ``CLUSTER NODES`` address ``host:port@cluster-port``."""
    return int(address.split(":")[1].split("@")[0])


def _ports_of(url: str) -> list[int]:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with redis.Redis(port=port) as c:
        return sorted(_port(address) for address in c.execute_command("CLUSTER NODES"))


@pytest.mark.anyio
async def test_the_task_store_follows_a_slot_that_moves(cluster_url: str) -> None:
    """A task's slot migrates to another primary while the store uses it: reads and compare-and-swap
    writes follow the ASK redirects during the migration and the MOVED ones after it."""
    client = connect(cluster_url)
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    store, ctx = RedisTaskStore(client, keys, "agent"), ServerCallContext()
    ports = _ports_of(cluster_url)
    try:
        task = Task(
            id=f"m{uuid.uuid4().hex[:6]}",
            context_id="c",
            status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
        )
        v = await store.save(task, event=task, prev_version=TaskVersion.MISSING, context=ctx)
        with redis.Redis(port=ports[0]) as any_node:
            slot = int(any_node.execute_command("CLUSTER KEYSLOT", keys.task("agent", task.id)))
        src_id, _, src_port = _node_of(ports[0], slot)
        dst_port = next(p for p in ports if p != src_port)
        with redis.Redis(port=src_port) as src, redis.Redis(port=dst_port) as dst:
            dst_id = _text(dst.execute_command("CLUSTER MYID"))
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
            moving = [_text(k) for k in src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100)]
            assert keys.task("agent", task.id) in moving
            src.execute_command("MIGRATE", "127.0.0.1", dst_port, "", 0, 5000, "KEYS", *moving)
            # Mid-migration: the source answers ASK for keys it no longer holds.
            stored = await store.get(task.id, ctx)
            assert stored is not None and stored.version == v
            task.status.state = TaskState.TASK_STATE_WORKING
            v = await store.save(task, event=task, prev_version=v, context=ctx)
            for port in ports:  # the slot now belongs to the destination: MOVED from the others
                with redis.Redis(port=port) as node:
                    node.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        assert _node_of(ports[0], slot)[2] == dst_port
        task.status.state = TaskState.TASK_STATE_COMPLETED
        v = await store.save(task, event=task, prev_version=v, context=ctx)
        stored = await store.get(task.id, ctx)
        assert stored is not None and stored.version == v
        assert stored.task.status.state == TaskState.TASK_STATE_COMPLETED
        with redis.Redis(port=dst_port) as dst:
            assert dst.xlen(keys.task_events("agent", task.id)) == 3  # every event, in the new home
    finally:
        await client.aclose()


@pytest.fixture
def replicated_cluster() -> Iterator[tuple[str, dict[int, subprocess.Popen[bytes]]]]:
    """3 primaries, each with a replica; a node is declared failed after 500 ms."""
    assert REDIS_SERVER and REDIS_CLI
    ports = [free_port() for _ in range(6)]
    workdir = tempfile.mkdtemp(prefix="podium-cluster-")
    procs = {port: _node(port, workdir, "--cluster-node-timeout", "500") for port in ports}
    try:
        for p in ports:
            wait_until(lambda p=p: _pings(p), timeout=10, what=f"cluster node {p}")
        nodes = [f"127.0.0.1:{p}" for p in ports]
        create = [REDIS_CLI, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=30)
        wait_until(lambda: all(_cluster_ok(p) for p in ports), timeout=20, what="cluster_state:ok")
        # Every replica's first full sync done, so a write reaches it as a stream of commands (on a loaded
        # machine the initial sync can take seconds).
        wait_until(lambda: all(_in_sync(p) for p in ports), timeout=60, what="replicas in sync")
        yield f"redis+cluster://127.0.0.1:{ports[0]}/0", procs
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _in_sync(port: int) -> bool:
    with redis.Redis(port=port, socket_timeout=2) as c:
        info = c.info("replication")
    if info["role"] == "master":
        return int(info.get("connected_slaves", 0)) >= 1
    return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")


@pytest.mark.anyio
async def test_the_task_store_carries_on_when_a_primary_fails_over(replicated_cluster) -> None:
    url, procs = replicated_cluster
    client = connect(url)
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    store, ctx = RedisTaskStore(client, keys, "agent"), ServerCallContext()
    try:
        task = Task(id="f1", context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
        v = await store.save(task, event=task, prev_version=TaskVersion.MISSING, context=ctx)
        any_port = next(iter(procs))
        with redis.Redis(port=any_port) as c:
            slot = int(c.execute_command("CLUSTER KEYSLOT", keys.task("agent", "f1")))
        primary_id, _, primary_port = _node_of(any_port, slot)
        with redis.Redis(port=primary_port) as c:
            nodes = c.execute_command("CLUSTER NODES")
        replica_port = next(_port(a) for a, n in nodes.items() if n.get("master_id") == primary_id)
        key = keys.task("agent", "f1")

        def replicated() -> bool:
            with redis.Redis(port=replica_port) as r:
                r.execute_command("READONLY")
                return bool(r.exists(key))

        wait_until(replicated, timeout=30, what="the task to reach the replica")
        procs[primary_port].kill()  # the primary dies; its replica takes over
        procs[primary_port].wait(10)
        with redis.Redis(port=replica_port) as r:
            r.execute_command("CLUSTER FAILOVER", "TAKEOVER")
        task.status.state = TaskState.TASK_STATE_COMPLETED
        with anyio.fail_after(40):
            v = await store.save(task, event=task, prev_version=v, context=ctx)
            stored = await store.get("f1", ctx)
        assert stored is not None and stored.version == v
        assert stored.task.status.state == TaskState.TASK_STATE_COMPLETED
        assert _node_of(replica_port, slot)[2] == replica_port
    finally:
        await client.aclose()


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
