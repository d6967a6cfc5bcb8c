"""Tokens in every mode: embedded `podium up` honours PODIUM_A2A_TOKEN as `podium agent` does (one settings
path), its cards say so, and no service binds beyond loopback without authentication unless --insecure."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from a2a.client.errors import A2AClientError
from a2a.types.a2a_pb2 import ListTasksRequest

from tests.agents.agent_procs import fetch_card, make_client, text_request
from tests.support import Proc, wait_until

pytestmark = pytest.mark.anyio

LINE = re.compile(r"^\s+(\S+)\s+(http://\S+)$", re.M)
TOKEN = "s3cret-embedded-token"
A2A = {"A2A-Version": "1.0"}
LIST_TASKS = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}


def _up(*args: str, env: dict[str, str]) -> tuple[Proc, dict[str, str]]:
    proc = Proc.podium("up", "--any-port", "--no-console", "--agents", "echo", *args, env=env)

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"podium up exited:\n{proc.output()}")
        return "Ctrl-C stops everything." in proc.output()

    wait_until(ready, timeout=90, what="podium up to print its URLs")
    return proc, dict(LINE.findall(proc.output()))


async def _list_tasks(url: str, headers: dict[str, str]) -> int:
    """How many tasks an a2a-sdk client sending ``headers`` is shown."""
    card = await fetch_card(url)
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        client = make_client(card, "JSONRPC", streaming=False, http=http)
        try:
            return len((await client.list_tasks(ListTasksRequest())).tasks)
        finally:
            await client.close()


async def test_embedded_up_with_a_token_refuses_calls_without_it() -> None:
    env = {"REDIS_URL": "", "ANTHROPIC_API_KEY": "", "PODIUM_A2A_TOKEN": TOKEN, "PODIUM_CLIENTS_FILE": ""}
    proc, urls = _up(env=env)
    try:
        assert "one process, embedded bus" in proc.output()
        echo = urls["echo"]
        good = {"Authorization": f"Bearer {TOKEN}"}
        # the card is public and says a bearer token is required
        card = await fetch_card(echo)
        assert any("bearer" in req.schemes for req in card.security_requirements), card
        # one task, sent with the token
        async with httpx.AsyncClient(headers=good, timeout=30) as http:
            client = make_client(card, "JSONRPC", streaming=False, http=http)
            with anyio.fail_after(60):
                _ = [ev async for ev in client.send_message(text_request("hello"))]
            await client.close()
        assert await _list_tasks(echo, good) == 1
        # the a2a-sdk client without the token, and with a wrong one: refused, nothing listed
        for headers in ({}, {"Authorization": "Bearer wrong-token"}):
            with pytest.raises(A2AClientError) as refused:
                await _list_tasks(echo, headers)
            assert "401" in str(refused.value) or refused.value.status_code == 401, refused.value
        # the same as raw HTTP, on both bindings
        async with httpx.AsyncClient(timeout=30) as http:
            for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}):
                rpc = await http.post(echo, json=LIST_TASKS, headers={**A2A, **headers})
                assert rpc.status_code == 401 and "tasks" not in rpc.text, rpc.text
                assert rpc.json()["error"]["code"] == -32600
                assert rpc.headers["www-authenticate"].startswith("Bearer")
                rest = await http.get(f"{echo}/tasks", headers={**A2A, **headers})
                assert rest.status_code == 401 and rest.json()["error"]["status"] == "UNAUTHENTICATED"
            ok = await http.post(echo, json=LIST_TASKS, headers={**A2A, **good})
            assert ok.status_code == 200 and len(ok.json()["result"]["tasks"]) == 1, ok.text
            # the registry's writes want PODIUM_REGISTRY_TOKEN the same way (unset here: loopback only)
            assert (await http.get(f"{urls['registry']}/agents")).status_code == 200
    finally:
        proc.close()


def test_binding_beyond_loopback_without_auth_refuses_to_start() -> None:
    env = {"REDIS_URL": "", "PODIUM_A2A_TOKEN": "", "PODIUM_REGISTRY_TOKEN": "", "PODIUM_CLIENTS_FILE": ""}
    for args in (["up", "--host", "0.0.0.0", "--any-port"], ["agent", "echo", "--host", "0.0.0.0"]):
        proc = Proc.podium(*args, env=env)
        assert proc.proc.wait(60) == 2, proc.output()
        lines = proc.output().strip().splitlines()
        proc.close()
        assert len(lines) == 1 and "refusing to listen on 0.0.0.0" in lines[0], lines
        assert "PODIUM_A2A_TOKEN" in lines[0] and "--insecure" in lines[0], lines
    # with the A2A token but no registry token, `podium up` still names what is missing
    proc = Proc.podium("up", "--host", "0.0.0.0", "--any-port", env={**env, "PODIUM_A2A_TOKEN": TOKEN})
    assert proc.proc.wait(60) == 2
    (line,) = proc.output().strip().splitlines()
    proc.close()
    assert "PODIUM_REGISTRY_TOKEN for the registry's writes" in line and "A2A" not in line, line


def test_insecure_warns_and_starts() -> None:
    env = {"REDIS_URL": "", "ANTHROPIC_API_KEY": "", "PODIUM_A2A_TOKEN": "", "PODIUM_REGISTRY_TOKEN": ""}
    proc, urls = _up("--host", "0.0.0.0", "--insecure", env={**env, "PODIUM_CLIENTS_FILE": ""})
    try:
        out = proc.output()
        assert "warning: --insecure: listening on 0.0.0.0 without authentication" in out, out
        assert "echo" in urls
    finally:
        proc.close()


def _ask(url: str, question: str, times: int = 1) -> tuple[int, str]:
    """`podium ask --url URL QUESTION` (``question * times``) in a process of its own; the question is built in
    that process, since one argument on a Linux command line is capped at 128 KiB."""
    code = (
        "import sys; from podium.agents.cli import main; "
        f"sys.exit(main(['ask', '--url', {url!r}, {question!r} * {times}]))"
    )
    proc = Proc([sys.executable, "-c", code], env={"PODIUM_A2A_TOKEN": "", "PODIUM_URL": ""})
    try:
        status = proc.proc.wait(120)
        return status, proc.output()
    finally:
        proc.close()


def test_ask_says_the_limits_in_one_line_and_its_trace_hint_names_the_url() -> None:
    from podium.agents.cli.ask import MAX_BODY_BYTES, MAX_QUESTION_CHARS
    from podium.agents.host.http import DEFAULT_MAX_BODY
    from podium.agents.orchestrator.session import MAX_REQUEST_CHARS

    assert (MAX_BODY_BYTES, MAX_QUESTION_CHARS) == (DEFAULT_MAX_BODY, MAX_REQUEST_CHARS)
    env = {"REDIS_URL": "", "ANTHROPIC_API_KEY": "", "PODIUM_A2A_TOKEN": "", "PODIUM_CLIENTS_FILE": ""}
    proc, urls = _up(env=env)
    try:
        echo = urls["echo"]
        status, out = _ask(echo, "x", 1_100_000)
        assert status == 1, out
        (line,) = out.strip().splitlines()
        assert line.startswith("podium ask: the question is too large") and "1,000,000 bytes" in line, line
        assert "20,000 characters" in line, line
        status, out = _ask(echo, "hello")
        assert status == 0, out
        assert re.search(rf"podium trace --url {re.escape(echo)} [0-9a-f-]{{36}}\)", out), out
    finally:
        proc.close()


async def test_an_agent_on_loopback_refuses_a_foreign_host_name() -> None:
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example."""
    env = {"REDIS_URL": "", "ANTHROPIC_API_KEY": "", "PODIUM_A2A_TOKEN": "", "PODIUM_CLIENTS_FILE": ""}
    proc, urls = _up(env=env)
    try:
        echo = urls["echo"]
        port = echo.rsplit(":", 1)[1]
        async with httpx.AsyncClient(timeout=30) as http:
            for host in ("evil.example", f"evil.example:{port}", "10.0.0.5", "127.0.0.1.evil.example"):
                rpc = await http.post(echo, json=LIST_TASKS, headers={**A2A, "Host": host})
                assert rpc.status_code == 421 and "does not answer to Host" in rpc.text, (host, rpc.text)
                rest = await http.get(f"{echo}/tasks", headers={**A2A, "Host": host})
                assert rest.status_code == 421 and rest.json()["error"]["status"] == "PERMISSION_DENIED"
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", "127.0.0.2"):
                ok = await http.post(echo, json=LIST_TASKS, headers={**A2A, "Host": host})
                assert ok.status_code == 200, (host, ok.text)
    finally:
        proc.close()


async def test_embedded_up_reads_the_clients_file_and_keeps_tasks_apart(tmp_path: Path) -> None:
    clients = tmp_path / "clients.json"
    tokens = {}
    for name in ("north", "south"):
        added = Proc.podium("clients", "add", name, "--file", str(clients))
        assert added.proc.wait(60) == 0
        tokens[name] = added.output().strip()
        added.close()
    env = {
        "REDIS_URL": "",
        "ANTHROPIC_API_KEY": "",
        "PODIUM_A2A_TOKEN": "",
        "PODIUM_CLIENTS_FILE": str(clients),
    }
    proc, urls = _up(env=env)
    try:
        echo = urls["echo"]
        card = await fetch_card(echo)
        north = {"Authorization": f"Bearer {tokens['north']}"}
        async with httpx.AsyncClient(headers=north, timeout=30) as http:
            client = make_client(card, "JSONRPC", streaming=False, http=http)
            with anyio.fail_after(60):
                events = [ev async for ev in client.send_message(text_request("hello from north"))]
            await client.close()
        task_id = events[-1].task.id
        assert await _list_tasks(echo, north) == 1
        south = {"Authorization": f"Bearer {tokens['south']}"}
        assert await _list_tasks(echo, south) == 0
        async with httpx.AsyncClient(timeout=30) as http:
            get = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task_id}}
            theirs = await http.post(echo, json=get, headers={**A2A, **south})
            get["params"] = {"id": "00000000-0000-0000-0000-000000000000"}
            unknown = await http.post(echo, json=get, headers={**A2A, **south})
            assert theirs.json() == unknown.json() and "error" in theirs.json()
            assert (await http.post(echo, json=LIST_TASKS, headers=A2A)).status_code == 401
    finally:
        proc.close()
