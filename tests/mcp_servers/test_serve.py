"""The HTTP app in-process: bearer-token checks, the exact ``/mcp`` path, health, and bad settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from podium.mcp_servers import UnknownServerError
from podium.mcp_servers.errors import McpServersError
from podium.mcp_servers.serve import create_app, is_loopback

TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


@pytest.fixture
def app() -> Iterator[TestClient]:
    with TestClient(create_app("calc", token="s3cret"), base_url="http://127.0.0.1:8711") as client:
        yield client


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, 'Bearer realm="podium-mcp"'),
        ("Bearer wrong", 'Bearer realm="podium-mcp", error="invalid_token"'),
        ("Bearer s3cret-and-more", 'Bearer realm="podium-mcp", error="invalid_token"'),
        ("Basic s3cret", 'Bearer realm="podium-mcp", error="invalid_token"'),
        ("Bearer", 'Bearer realm="podium-mcp", error="invalid_token"'),
    ],
)
def test_requests_without_the_token_get_401(
    app: TestClient, authorization: str | None, challenge: str
) -> None:
    headers = HEADERS if authorization is None else {**HEADERS, "Authorization": authorization}
    response = app.post("/mcp", json=TOOLS_LIST, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == challenge
    assert "s3cret" not in response.text


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_the_token_opens_mcp(app: TestClient, scheme: str) -> None:
    response = app.post("/mcp", json=TOOLS_LIST, headers={**HEADERS, "Authorization": f"{scheme} s3cret"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "evaluate" in {tool["name"] for tool in response.json()["result"]["tools"]}


def test_health_needs_no_token_and_only_mcp_is_served(app: TestClient) -> None:
    assert app.get("/healthz").json() == {"status": "ok", "server": "calc", "auth": True}
    assert app.post("/other", json=TOOLS_LIST).status_code == 404


def test_without_a_token_mcp_is_open_on_loopback() -> None:
    with TestClient(create_app("docs", token=""), base_url="http://127.0.0.1:8710") as client:
        response = client.post("/mcp", json=TOOLS_LIST, headers=HEADERS)
        assert response.status_code == 200
        assert client.get("/healthz").json()["auth"] is False


def test_loopback_hosts_reject_foreign_host_headers() -> None:
    with TestClient(create_app("calc", token=""), base_url="http://attacker.example") as client:
        assert client.post("/mcp", json=TOOLS_LIST, headers=HEADERS).status_code == 421


def test_the_server_must_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_MCP_SERVER", raising=False)
    with pytest.raises(McpServersError, match="PODIUM_MCP_SERVER"):
        create_app()
    monkeypatch.setenv("PODIUM_MCP_SERVER", "abacus")
    with pytest.raises(UnknownServerError, match="abacus"):
        create_app()


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.com")
