"""Two outside systems calling one orchestrator, as a user sets it up: `podium clients add` makes their
credentials, real agent processes run on a real Redis with the ACLs `podium acl` writes (each agent as its
own user), and each client sees only its own tasks: another's task id answers TaskNotFound exactly as an
unknown id does, over HTTP and over the bus; an admin client sees both; a removed client is refused at once;
the console's data names each task's owner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
import redis.asyncio
from a2a.client.client import Client
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import TaskNotFoundError

from podium.agents.cli.acl import read_env_file
from podium.agents.console import data
from podium.bus.a2a_client import BusClient
from podium.bus.acl import password_variable
from podium.bus.keys import Keys
from tests.agents.agent_procs import AgentProc, fetch_card, make_client, text_request
from tests.support import REDIS_SERVER, ROOT, RedisServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed"),
]

ADMIN_PASSWORD = "admin-password-for-the-clients-test"
A2A = {"A2A-Version": "1.0"}


def podium(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class System:
    keys: Keys
    server: RedisServer
    passwords: dict[str, str]
    clients_file: Path
    tokens: dict[str, str]
    orchestrator: str  # its A2A URL

    def redis_url(self, user: str) -> str:
        return f"redis://{user}:{self.passwords[user]}@127.0.0.1:{self.server.port}/0"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    home = tmp_path_factory.mktemp("clients")
    keys = Keys(f"t{uuid.uuid4().hex[:12]}")
    env_file, acl, clients_file = home / "podium.env", home / "users.acl", home / "clients.json"
    made = podium(
        "acl", "--namespace", keys.namespace, "--env-file", str(env_file), "--out", str(acl),
        env={password_variable("admin"): ADMIN_PASSWORD},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    passwords = {
        name.removeprefix("PODIUM_REDIS_PASSWORD_").lower(): value
        for name, value in read_env_file(env_file).items()
    }
    passwords["admin"] = ADMIN_PASSWORD
    tokens: dict[str, str] = {}
    for name, scope in (("alpha", "ask"), ("beta", "ask"), ("ops", "admin")):
        added = podium(
            "clients", "add", name, "--scope", scope, env={"PODIUM_CLIENTS_FILE": str(clients_file)}
        )
        assert added.returncode == 0, added.stderr
        assert added.stdout.count("\n") == 1 and added.stderr == "", (added.stdout, added.stderr)
        tokens[name] = added.stdout.strip()
    stored = clients_file.read_text()
    assert all(token not in stored for token in tokens.values())  # hashes only
    server = RedisServer(extra_args=["--aclfile", str(acl)], auth=("admin", ADMIN_PASSWORD)).start()
    procs: list[AgentProc] = []
    try:
        env = {
            "PODIUM_CLIENTS_FILE": str(clients_file),
            "PODIUM_A2A_TOKEN": "",
            "PODIUM_DEFAULT_AGENT": "echo",
            "ANTHROPIC_API_KEY": "",
        }
        for name in ("echo", "orchestrator"):
            url = f"redis://{name}:{passwords[name]}@127.0.0.1:{server.port}/0"
            procs.append(AgentProc(name, url, keys.namespace, f"{name}-1", env=env).wait_ready(90))
        yield System(keys, server, passwords, clients_file, tokens, procs[-1].url)
    finally:
        for proc in procs:
            proc.close()
        server.close()


def http_for(system: System, client: str) -> httpx.AsyncClient:
    token = system.tokens[client]
    return httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)


async def ask(system: System, client: str, question: str) -> str:
    """``client`` sends ``question`` and waits for the answer; returns the task id."""
    card = await fetch_card(system.orchestrator)
    async with http_for(system, client) as http:
        a2a = make_client(card, "JSONRPC", streaming=False, http=http)
        try:
            with anyio.fail_after(120):
                events = [ev async for ev in a2a.send_message(text_request(question))]
        finally:
            await a2a.close()
    task = events[-1].task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, task
    return task.id


async def rpc(system: System, client: str, method: str, params: dict[str, object]) -> dict[str, object]:
    async with http_for(system, client) as http:
        body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
        response = await http.post(system.orchestrator, json=body, headers=A2A)
    return response.json()


async def test_each_client_sees_only_its_own_tasks_and_admin_sees_all(system: System) -> None:
    a = await ask(system, "alpha", "echo: a question from alpha")
    b = await ask(system, "beta", "echo: a question from beta")
    unknown = str(uuid.uuid4())
    card = await fetch_card(system.orchestrator)
    for me, mine, theirs in (("alpha", a, b), ("beta", b, a)):
        async with http_for(system, me) as http:
            client = make_client(card, "JSONRPC", streaming=True, http=http)
            try:
                listed = await client.list_tasks(ListTasksRequest())
                assert [t.id for t in listed.tasks] == [mine], (me, listed)
                assert (await client.get_task(GetTaskRequest(id=mine))).id == mine
                with pytest.raises(TaskNotFoundError):
                    await client.get_task(GetTaskRequest(id=theirs))
                with pytest.raises(TaskNotFoundError):
                    await client.cancel_task(CancelTaskRequest(id=theirs))
                with pytest.raises(TaskNotFoundError):
                    async for _ in client.subscribe(SubscribeToTaskRequest(id=theirs)):
                        pass
            finally:
                await client.close()
        # another's task and an unknown id: the same answer, byte for byte
        for method in (
            "GetTask",
            "CancelTask",
            "ListTaskPushNotificationConfigs",
            "GetTaskPushNotificationConfig",
        ):
            params: dict[str, object] = {"taskId": theirs} if "Push" in method else {"id": theirs}
            other = await rpc(system, me, method, params)
            params = {"taskId": unknown} if "Push" in method else {"id": unknown}
            none = await rpc(system, me, method, params)
            assert other == none and "error" in other, (method, other, none)
    # the admin client sees both, and may read either
    async with http_for(system, "ops") as http:
        client = make_client(card, "JSONRPC", streaming=False, http=http)
        try:
            listed = {t.id for t in (await client.list_tasks(ListTasksRequest())).tasks}
            assert {a, b} <= listed
            assert (await client.get_task(GetTaskRequest(id=a))).id == a
        finally:
            await client.close()
    # traces follow the tasks: alpha reads its own, not beta's
    async with http_for(system, "alpha") as http:
        assert (await http.get(f"{system.orchestrator}/podium/trace/{a}")).status_code == 200
        assert (await http.get(f"{system.orchestrator}/podium/trace/{b}")).status_code == 404
    # the console (admin's view, from Redis) names each task's owner, and the trace names the caller
    admin = redis.asyncio.Redis.from_url(system.redis_url("admin"))
    try:
        rows = {r["id"]: r for r in await data.tasks(admin, system.keys)}
        assert rows[a]["owner"] == "alpha" and rows[b]["owner"] == "beta"
        shown = await data.task(admin, system.keys, a)
        assert shown is not None and shown["owner"] == "alpha"
        assert any(e["event"] == "caller" and "alpha" in e["reason"] for e in shown["trace"])
        # the orchestrator delegated as itself: echo's task belongs to the orchestrator, not to alpha
        echo_owners = {r["owner"] for r in rows.values() if r["agent"] == "echo"}
        assert echo_owners == {"bus:orchestrator"}, rows
    finally:
        await admin.aclose()


async def test_over_the_bus_a_task_belongs_to_the_caller_its_reply_stream_names(system: System) -> None:
    card = await fetch_card(system.orchestrator)
    url = system.redis_url("admin")
    conn = redis.asyncio.Redis.from_url(url)
    try:
        async with (
            BusClient(conn, system.keys, sender="alpha", default_timeout=120) as alpha,
            BusClient(conn, system.keys, sender="beta", default_timeout=120) as beta,
            # claims to be alpha, but its replies come to a stream of beta's
            BusClient(conn, system.keys, sender="alpha", client_id=f"beta.{uuid.uuid4().hex}") as liar,
        ):
            on_bus = {n: make_client(card, "redis-streams", bus=b, streaming=False) for n, b in
                      (("alpha", alpha), ("beta", beta), ("liar", liar))}  # fmt: skip
            with anyio.fail_after(120):
                events = [ev async for ev in on_bus["alpha"].send_message(text_request("echo: over the bus"))]
            task_id = events[-1].task.id
            assert (await on_bus["alpha"].get_task(GetTaskRequest(id=task_id))).id == task_id
            for who in ("beta", "liar"):
                with pytest.raises(TaskNotFoundError):
                    await on_bus[who].get_task(GetTaskRequest(id=task_id))
                assert task_id not in {t.id for t in (await on_bus[who].list_tasks(ListTasksRequest())).tasks}
            # and an HTTP client of the same name is another caller: bus owners are "bus:NAME"
            assert "error" in await rpc(system, "alpha", "GetTask", {"id": task_id})
            rows = {r["id"]: r for r in await data.tasks(conn, system.keys)}
            assert rows[task_id]["owner"] == "bus:alpha"
    finally:
        await conn.aclose()


async def test_a_removed_client_is_refused_and_a_new_one_works_without_a_restart(system: System) -> None:
    env = {"PODIUM_CLIENTS_FILE": str(system.clients_file)}
    added = podium("clients", "add", "gamma", env=env)
    assert added.returncode == 0, added.stderr
    gamma = added.stdout.strip()
    listed = podium("clients", "list", "--json", env=env)
    names = [c["name"] for c in json.loads(listed.stdout)["clients"]]
    assert names == ["alpha", "beta", "ops", "gamma"] and gamma not in listed.stdout
    body = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}
    headers = {**A2A, "Authorization": f"Bearer {gamma}"}
    async with httpx.AsyncClient(timeout=30) as http:
        ok = await http.post(system.orchestrator, json=body, headers=headers)
        assert ok.status_code == 200 and ok.json()["result"].get("tasks", []) == [], ok.text
        assert podium("clients", "remove", "gamma", env=env).returncode == 0
        refused = await http.post(system.orchestrator, json=body, headers=headers)
        assert refused.status_code == 401, refused.text


async def test_each_clients_message_ids_are_its_own(system: System) -> None:
    """Two clients sending the same message id each get a task of their own, neither can see the other's,
    and a client sending its message again (a retry) is answered with the task it already has — over HTTP
    and over the bus."""
    env = {"PODIUM_CLIENTS_FILE": str(system.clients_file)}
    for name in ("delta", "omega"):
        added = podium("clients", "add", name, env=env)
        assert added.returncode == 0, added.stderr
        system.tokens[name] = added.stdout.strip()
    card = await fetch_card(system.orchestrator)
    message_id = f"shared-{uuid.uuid4().hex[:8]}"

    def request(text: str) -> SendMessageRequest:
        sent = text_request(text)
        sent.message.message_id = message_id
        return sent

    async def send(client: Client, text: str) -> Task:
        with anyio.fail_after(120):
            events = [ev async for ev in client.send_message(request(text))]
        task = events[-1].task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED, task
        return task

    async with http_for(system, "delta") as d_http, http_for(system, "omega") as o_http:
        delta = make_client(card, "JSONRPC", streaming=False, http=d_http)
        omega = make_client(card, "JSONRPC", streaming=False, http=o_http)
        try:
            mine = await send(delta, "echo: delta asks")
            theirs = await send(omega, "echo: omega asks")  # the same message id, another client
            assert theirs.id != mine.id
            assert "omega asks" in str(theirs.artifacts) and "delta asks" not in str(theirs.artifacts)
            for me, other in ((delta, theirs), (omega, mine)):
                with pytest.raises(TaskNotFoundError):
                    await me.get_task(GetTaskRequest(id=other.id))
            again = await send(delta, "echo: delta asks")  # a retry: the same task, not run again
            assert again.id == mine.id and again.artifacts == mine.artifacts
            assert [t.id for t in (await delta.list_tasks(ListTasksRequest())).tasks] == [mine.id]
            assert [t.id for t in (await omega.list_tasks(ListTasksRequest())).tasks] == [theirs.id]
        finally:
            await delta.close()
            await omega.close()
    conn = redis.asyncio.Redis.from_url(system.redis_url("admin"))
    try:
        async with (
            BusClient(conn, system.keys, sender="delta", default_timeout=120) as d_bus,
            BusClient(conn, system.keys, sender="omega", default_timeout=120) as o_bus,
        ):
            delta = make_client(card, "redis-streams", bus=d_bus, streaming=False)
            omega = make_client(card, "redis-streams", bus=o_bus, streaming=False)
            mine = await send(delta, "echo: delta asks over the bus")
            theirs = await send(omega, "echo: omega asks over the bus")
            assert theirs.id != mine.id
            assert [t.id for t in (await delta.list_tasks(ListTasksRequest())).tasks] == [mine.id]
            with pytest.raises(TaskNotFoundError):
                await omega.get_task(GetTaskRequest(id=mine.id))
            assert (await send(delta, "echo: delta asks over the bus")).id == mine.id
    finally:
        await conn.aclose()
