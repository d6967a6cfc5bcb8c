"""End to end: a real `podium agent echo` at capacity refuses new work with the overloaded error over the
bus, JSON-RPC and HTTP+JSON, shows its backlog in `podium agents` and the registry's `GET /agents`, and
accepts again once drained; an agent or `podium up` on a Redis that may evict keys refuses to start."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from a2a.client.errors import A2AClientError
from a2a.types.a2a_pb2 import TaskState

from podium.bus.a2a_client import BusClient
from podium.bus.backpressure import AgentOverloaded, Inboxes, retry_after
from podium.bus.connection import connect
from podium.bus.keys import Keys
from tests.agents.agent_procs import AgentProc, fetch_card, make_client, text_request
from tests.bus.helpers import until
from tests.support import REDIS_SERVER, Proc, RedisServer, free_port, no_redis_server, port_open, wait_until

pytestmark = pytest.mark.anyio

A2A_HEADERS = {"A2A-Version": "1.0"}
HOLD_S = 10  # how long the request the agent holds keeps its worker; the HTTP checks take far less


async def test_a_full_agent_refuses_new_work_everywhere_and_accepts_once_drained(
    redis_url: str, namespace: str
) -> None:
    # Capacity 1: the request it is working on fills it.
    agent = AgentProc("echo", redis_url, namespace, "busy-1", "--capacity", "1", "--concurrency", "1",
                      "--retry-after", "2.5")  # fmt: skip
    registry_port = free_port()
    registry = Proc.podium("registry", "--port", str(registry_port), "--redis-url", redis_url,
                           "--namespace", namespace)  # fmt: skip
    redis = connect(redis_url)
    keys = Keys(namespace)
    try:
        agent.wait_ready()
        wait_until(lambda: port_open(registry_port), timeout=30, what="the registry to listen")
        card = await fetch_card(agent.url)
        async with (
            BusClient(redis, keys, sender="test", default_timeout=60) as bus,
            httpx.AsyncClient() as http,
        ):
            via_bus = make_client(card, "redis-streams", bus=bus, streaming=False)
            via_rpc = make_client(card, "JSONRPC", streaming=True)
            via_rest = make_client(card, "HTTP+JSON", streaming=False)
            inboxes = Inboxes(redis)

            async def hold() -> None:
                async for _ in via_bus.send_message(text_request("held", delay_s=HOLD_S)):
                    pass

            async def waiting() -> int:
                return (await inboxes.stats(keys, ["echo"]))["echo"].waiting

            async with anyio.create_task_group() as tg:
                tg.start_soon(hold)
                await until(lambda: _eq(waiting(), 1), what="the held request to fill the inbox")
                # Over the bus: refused at publish, before anything is queued.
                with pytest.raises(AgentOverloaded) as refused:
                    async for _ in via_bus.send_message(text_request("one more")):
                        pass
                assert str(refused.value).startswith(
                    "agent echo is overloaded: 1 requests waiting (capacity 1)"
                )
                assert retry_after(refused.value) == 2.5
                # Over JSON-RPC (streaming) and HTTP+JSON, with the ordinary a2a-sdk client.
                for client in (via_rpc, via_rest):
                    with pytest.raises(A2AClientError) as over_http:
                        async for _ in client.send_message(text_request("one more")):
                            pass
                    assert retry_after(over_http.value) == 2.5, repr(over_http.value)
                # The wire shapes.
                rpc = await http.post(agent.url, headers=A2A_HEADERS, json={
                    "jsonrpc": "2.0", "id": 7, "method": "SendMessage",
                    "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "x"}]}},
                })  # fmt: skip
                error = rpc.json()["error"]
                assert rpc.status_code == 200 and rpc.json()["id"] == 7 and error["code"] == -32050
                assert (
                    error["data"][0]["reason"] == "AGENT_OVERLOADED"
                    and error["data"][1]["retryDelay"] == "2.5s"
                )
                assert rpc.headers["retry-after"] == "3"
                rest = await http.post(f"{agent.url}/message:send", headers=A2A_HEADERS, json={
                    "message": {"messageId": "m2", "role": "ROLE_USER", "parts": [{"text": "x"}]},
                })  # fmt: skip
                assert rest.status_code == 503 and rest.headers["retry-after"] == "3"
                assert rest.json()["error"]["status"] == "UNAVAILABLE"
                assert "agent echo is overloaded" in rest.json()["error"]["message"]
                # Reads are never refused.
                listed = await http.post(agent.url, headers=A2A_HEADERS, json={
                    "jsonrpc": "2.0", "id": 8, "method": "ListTasks", "params": {},
                })  # fmt: skip
                assert "result" in listed.json(), listed.text
                # The backlog, as operators see it; the agent is frozen meanwhile (SIGSTOP), so the request
                # it holds stays pending however slowly the CLI starts.
                agent.proc.signal(signal.SIGSTOP)
                shown = await anyio.to_thread.run_sync(_podium_agents, redis_url, namespace)
                (echo,) = [a for a in shown if a["name"] == "echo"]
                queue = echo["queue"]
                assert (queue["depth"], queue["pending"], queue["waiting"], queue["capacity"]) == (0, 1, 1, 1)
                assert queue["oldestPendingAgeS"] >= 0
                registry_url = f"http://127.0.0.1:{registry_port}"
                answer = (await http.get(f"{registry_url}/agents?all=1")).json()["agents"]
                assert next(a["queue"] for a in answer if a["name"] == "echo")["pending"] == 1
                found = (await http.get(f"{registry_url}/agents?skill=echo")).json()
                assert found["agents"][0]["queue"]["capacity"] == 1
                agent.proc.signal(signal.SIGCONT)
            # Drained (the held request finished and was acknowledged): new work is accepted everywhere.
            for client in (via_bus, via_rpc, via_rest):
                # (a bus request is acknowledged just after its answer: the next waits for that too)
                await until(lambda: _eq(waiting(), 0), what="the inbox to drain")
                events = [ev async for ev in client.send_message(text_request("after"))]
                assert _state(events) == TaskState.TASK_STATE_COMPLETED
            for client in (via_bus, via_rpc, via_rest):
                await client.close()

            async def chunked() -> AsyncIterator[
                bytes
            ]:  # no Content-Length: the size limit applies as it reads
                yield b'{"jsonrpc": "2.0", "id": 9, "method": "SendMessage", "params": {"x": "'
                for _ in range(20):
                    yield b"x" * 100_000
                yield b'"}}'

            too_big = await http.post(agent.url, content=chunked(), headers=A2A_HEADERS)
            assert too_big.status_code == 413 and too_big.json()["error"]["code"] == -32600
        table = await anyio.to_thread.run_sync(_podium_agents_table, redis_url, namespace)
        assert "QUEUED" in table and "PENDING" in table and "0/1" in table
    finally:
        agent.close()
        registry.close()
        await redis.aclose()


def _podium_agents(redis_url: str, namespace: str) -> list[dict]:
    proc = Proc.podium("agents", "--json", "--all", "--redis-url", redis_url, "--namespace", namespace)
    try:
        assert proc.proc.wait(60) == 0, proc.output()
        return json.loads(proc.output())
    finally:
        proc.close()


def _podium_agents_table(redis_url: str, namespace: str) -> str:
    proc = Proc.podium("agents", "--redis-url", redis_url, "--namespace", namespace)
    try:
        assert proc.proc.wait(60) == 0, proc.output()
        return proc.output()
    finally:
        proc.close()


def _state(events: list) -> int | None:
    """The last task state in a list of StreamResponses."""
    state = None
    for ev in events:
        which = ev.WhichOneof("payload")
        if which == "task":
            state = ev.task.status.state
        elif which == "status_update":
            state = ev.status_update.status.state
    return state


async def _eq(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]


@pytest.fixture
def evicting_redis():  # type: ignore[no-untyped-def]
    if REDIS_SERVER is None:
        no_redis_server()
    server = RedisServer(extra_args=["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"]).start()
    yield server
    server.close()


def test_agent_and_up_refuse_a_redis_that_may_evict_keys(evicting_redis: RedisServer, namespace: str) -> None:
    agent = Proc.podium("agent", "echo", "--redis-url", evicting_redis.url, "--namespace", namespace,
                        "--no-register")  # fmt: skip
    up = Proc.podium("up", "--redis-url", evicting_redis.url, "--namespace", namespace, "--any-port")
    try:
        assert agent.proc.wait(60) == 2
        assert up.proc.wait(60) == 2  # a configuration problem, as for the agent
        for proc in (agent, up):
            out = proc.output()
            assert "maxmemory-policy volatile-lru" in out and "--allow-eviction" in out, out
            assert "Traceback" not in out, out
    finally:
        agent.close()
        up.close()
    allowed = AgentProc("echo", evicting_redis.url, namespace, "lenient", "--allow-eviction")
    try:
        allowed.wait_ready()
        assert "WARNING" in allowed.proc.output() and "evicts keys" in allowed.proc.output()
    finally:
        allowed.close()
