"""`podium agent` and Redis that is not there: it says what it waits for, gives up when told to, obeys the
first SIGTERM/SIGINT at every moment, starts once Redis comes, answers /healthz with 503 while Redis is
down and recovers by itself, and leaves no asyncio task behind across an outage."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from tests.agents.agent_procs import AgentProc
from tests.support import CI, REDIS_SERVER, Proc, RedisServer, free_port, wait_until

pytestmark = pytest.mark.anyio
needs_redis = pytest.mark.skipif(REDIS_SERVER is None and not CI, reason="redis-server not installed")

A2A = {"A2A-Version": "1.0"}


def _send(text: str) -> dict[str, Any]:
    message = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}


def _waiting(proc: Proc) -> Callable[[], bool]:
    def check() -> bool:
        if not proc.alive():
            raise AssertionError(f"exited before saying it waits for Redis:\n{proc.output()}")
        return "waiting for Redis at" in proc.output()

    return check


def test_agent_says_it_waits_for_redis_then_gives_up_with_what_to_do() -> None:
    port = free_port()  # nothing listens there
    proc = Proc.podium(
        "agent", "echo", "--redis-url", f"redis://:s3cret@127.0.0.1:{port}/0", "--startup-timeout", "2"
    )
    try:
        wait_until(_waiting(proc), timeout=30, what="the 'waiting for Redis' line")
        assert proc.proc.wait(60) == 1
        out = proc.output()
        assert f"waiting for Redis at redis://:***@127.0.0.1:{port}/0" in out
        assert "did not answer within 2s" in out and "--startup-timeout" in out and "REDIS_URL" in out
        assert "s3cret" not in out and "Traceback" not in out
    finally:
        proc.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_first_signal_stops_an_agent_waiting_for_redis(sig: signal.Signals) -> None:
    port = free_port()
    proc = Proc.podium(
        "agent", "echo", "--redis-url", f"redis://127.0.0.1:{port}/0", "--startup-timeout", "0"
    )
    try:
        wait_until(_waiting(proc), timeout=30, what="the 'waiting for Redis' line")
        proc.signal(sig)  # once
        assert proc.proc.wait(30) == 0, proc.output()
        assert "Traceback" not in proc.output()
    finally:
        proc.close()


def test_startup_timeout_from_the_environment_is_checked() -> None:
    proc = Proc.podium("agent", "echo", env={"PODIUM_STARTUP_TIMEOUT": "soon", "REDIS_URL": ""})
    try:
        assert proc.proc.wait(30) == 2
        assert "PODIUM_STARTUP_TIMEOUT='soon'" in proc.output()
    finally:
        proc.close()


@needs_redis
def test_agent_starts_once_redis_comes_up(namespace: str) -> None:
    server = RedisServer(port=free_port())
    agent = AgentProc("echo", server.url, namespace, "late", "--startup-timeout", "0")
    try:
        wait_until(_waiting(agent.proc), timeout=30, what="the 'waiting for Redis' line")
        server.start()
        agent.wait_ready(timeout=60)
        assert httpx.get(agent.url + "/healthz", timeout=10).json()["status"] == "ok"
    finally:
        agent.close()
        server.close()


async def _poll(http: httpx.AsyncClient, url: str, done: Callable[[httpx.Response], bool]) -> httpx.Response:
    """GET ``url`` until ``done(response)``; fails with the last answer after a minute."""
    response = None
    with anyio.move_on_after(60):
        while not done(response := await http.get(url)):  # noqa: ASYNC110 - another process: nothing to wait on
            await anyio.sleep(0.1)
        return response
    raise AssertionError(f"still not there after 60s; last answer {response and response.status_code}: "
                         f"{response and response.text}")  # fmt: skip


@needs_redis
async def test_healthz_follows_redis_and_an_outage_leaks_no_task(namespace: str) -> None:
    server = RedisServer().start()
    agent = AgentProc("echo", server.url, namespace, "health").wait_ready()
    health = agent.url + "/healthz"
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            answer = await http.post(agent.url + "/", json=_send("warm up"), headers=A2A)
            assert answer.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
            before = await http.get(health)
            assert before.status_code == 200 and before.json()["status"] == "ok"
            baseline = before.json()["asyncioTasks"]

            server.stop()
            down = await _poll(http, health, lambda r: r.status_code == 503)
            body = down.json()
            assert body["status"] == "unavailable" and body["error"]["code"] == "redis_unavailable"
            assert "Redis is not answering" in body["error"]["message"]
            # Requests that fail because the task store is unreachable must not leave tasks behind.
            for i in range(3):
                failed = await http.post(agent.url + "/", json=_send(f"during the outage {i}"), headers=A2A)
                assert "error" in failed.json()

            server.start()  # same port, empty: the agent must find its way back alone
            await _poll(http, health, lambda r: r.status_code == 200)
            back = await _poll(http, health, lambda r: r.json()["asyncioTasks"] <= baseline)
            assert back.json()["status"] == "ok", json.dumps(back.json())
            answer = await http.post(agent.url + "/", json=_send("after the outage"), headers=A2A)
            assert answer.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        assert agent.proc.terminate(30) == 0
        assert "Task was destroyed but it is pending" not in agent.proc.output()
    finally:
        agent.close()
        server.close()
