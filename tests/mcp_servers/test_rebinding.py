"""The DNS-rebinding guard: on for every bind address, over real HTTP to `podium mcp` processes; its allowed
hosts and origins from the defaults, `--allowed-hosts`/`--allowed-origins` and their env vars."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from podium.mcp_servers import AllowedHostError
from podium.mcp_servers.rebinding import AllowedHosts
from tests.support import ROOT, Proc, free_port, port_open, wait_until

TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
NO_ENV = {"PODIUM_MCP_ALLOWED_HOSTS": "", "PODIUM_MCP_ALLOWED_ORIGINS": "", "PODIUM_MCP_TOKEN": ""}


@contextmanager
def start(bind: str, *flags: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """`podium mcp calc --transport http` bound to ``bind``; yields the address to connect to and the port."""
    port = free_port()
    proc = Proc.podium(
        "mcp",
        "calc",
        "--transport",
        "http",
        "--host",
        bind,
        "--port",
        str(port),
        *flags,
        # no token on purpose: this is the rebinding guard's test, not the token's
        *([] if bind.startswith("127.") else ["--insecure"]),
        env={**NO_ENV, **(env or {})},
    )
    connect = "127.0.0.1" if bind == "0.0.0.0" else bind

    def up() -> bool:
        if not proc.alive():
            raise RuntimeError(f"podium mcp exited:\n{proc.output()}")
        return port_open(port, connect)

    try:
        wait_until(up, timeout=30, what=f"podium mcp calc on {bind}:{port}")
        yield connect, port
    finally:
        proc.close()


def post(address: str, port: int, **headers: str) -> httpx.Response:
    with httpx.Client(timeout=10) as http:
        return http.post(f"http://{address}:{port}/mcp", json=TOOLS_LIST, headers={**HEADERS, **headers})


@pytest.fixture(scope="module")
def other_loopback() -> Iterator[tuple[str, int]]:
    with start("127.0.0.2") as server:
        yield server


@pytest.fixture(scope="module")
def wildcard_from_env() -> Iterator[tuple[str, int]]:
    env = {
        "PODIUM_MCP_ALLOWED_HOSTS": "calc.internal, Tools.Example:9000",
        "PODIUM_MCP_ALLOWED_ORIGINS": "https://console.example",
    }
    with start("0.0.0.0", env=env) as server:
        yield server


def test_on_another_loopback_address_foreign_hosts_and_origins_are_refused(
    other_loopback: tuple[str, int],
) -> None:
    address, port = other_loopback
    evil_host = post(address, port, Host="evil.example")
    assert evil_host.status_code == 421
    assert evil_host.json()["error"] == "host_not_allowed"
    assert (
        "--allowed-hosts" in evil_host.json()["detail"]
        and "PODIUM_MCP_ALLOWED_HOSTS" in evil_host.json()["detail"]
    )
    assert post(address, port, Host=f"evil.example:{port}").status_code == 421
    evil_origin = post(address, port, Origin="http://evil.example")
    assert evil_origin.status_code == 403 and evil_origin.json()["error"] == "origin_not_allowed"
    assert post(address, port, Origin="null").status_code == 403
    # Its own names and origins work, and so does a browser tool on localhost (the MCP Inspector's UI).
    assert post(address, port).status_code == 200
    assert post(address, port, Host=f"localhost:{port}").status_code == 200
    assert post(address, port, Origin=f"http://127.0.0.2:{port}").status_code == 200
    assert post(address, port, Origin="http://localhost:6274").status_code == 200


def test_on_a_wildcard_bind_the_guard_is_on_and_the_env_adds_hosts_and_origins(
    wildcard_from_env: tuple[str, int],
) -> None:
    address, port = wildcard_from_env
    assert post(address, port, Host="evil.example").status_code == 421
    assert post(address, port, Origin="http://evil.example:8080").status_code == 403
    assert post(address, port).status_code == 200
    assert post(address, port, Host=f"{socket.gethostname()}:{port}").status_code == 200
    assert post(address, port, Host=f"calc.internal:{port}").status_code == 200
    assert post(address, port, Host="CALC.INTERNAL").status_code == 200
    assert post(address, port, Host="tools.example:9000").status_code == 200
    assert post(address, port, Host="tools.example:9001").status_code == 421  # a port, when given, is exact
    assert post(address, port, Origin="https://console.example").status_code == 200
    assert post(address, port, Origin="http://console.example").status_code == 403  # the scheme counts
    assert post(address, port, Origin=f"http://calc.internal:{port}").status_code == 200


@pytest.mark.anyio
async def test_an_mcp_client_works_through_the_guard(wildcard_from_env: tuple[str, int]) -> None:
    address, port = wildcard_from_env
    async with httpx2.AsyncClient() as http:
        async with Client(streamable_http_client(f"http://{address}:{port}/mcp", http_client=http)) as client:
            result = await client.call_tool("evaluate", {"expression": "6 * 7"})
            assert result.structured_content["value"] == 42


def test_the_flag_wins_over_the_env() -> None:
    env = {"PODIUM_MCP_ALLOWED_HOSTS": "from-env.example"}
    flags = ("--allowed-hosts", "a.example,b.example", "--allowed-hosts", "c.example")
    with start("0.0.0.0", *flags, env=env) as (address, port):
        assert post(address, port, Host="from-env.example").status_code == 421
        for host in ("a.example", "b.example", "c.example"):
            assert post(address, port, Host=host).status_code == 200, host
        assert post(address, port, Origin="https://c.example").status_code == 200


def test_a_star_allows_any_host() -> None:
    with start("127.0.0.2", "--allowed-hosts", "*") as (address, port):
        assert post(address, port, Host="anything.example").status_code == 200
        assert post(address, port, Origin="http://evil.example").status_code == 403  # origins are separate


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--transport", "http", "--allowed-hosts", "http://calc.example/"], "not a URL"),
        (["--transport", "http", "--allowed-origins", "calc.example"], "scheme://host"),
        (["--transport", "stdio", "--allowed-hosts", "calc.example"], "only to --transport http"),
    ],
)
def test_bad_allowed_hosts_are_usage_errors(flags: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "mcp", "calc", "--port", str(free_port()), *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_allowed_hosts_parsing() -> None:
    allowed = AllowedHosts.for_bind("::1", "::2, [::3]:8711, Calc.Example.", "https://[::4]:9443")
    assert (
        allowed.host_allowed("[::1]:8711")
        and allowed.host_allowed("[::2]:1")
        and allowed.host_allowed("[::3]:8711")
    )
    assert not allowed.host_allowed("[::3]:8712") and not allowed.host_allowed("[::5]:8711")
    assert allowed.host_allowed("calc.example:80") and allowed.host_allowed("calc.example.")
    assert not allowed.host_allowed("") and not allowed.host_allowed("evil.example")
    assert allowed.origin_allowed(None) and allowed.origin_allowed("https://[::4]:9443")
    assert not allowed.origin_allowed("https://[::4]:9444") and allowed.origin_allowed("http://[::2]:5")
    bound = AllowedHosts.for_bind("10.1.2.3")
    assert bound.host_allowed("10.1.2.3:8711") and bound.host_allowed("localhost:8711")
    assert not bound.host_allowed(socket.gethostname() + "x")
    with pytest.raises(AllowedHostError, match="NAME:PORT"):
        AllowedHosts.for_bind("127.0.0.1", "calc:http")
