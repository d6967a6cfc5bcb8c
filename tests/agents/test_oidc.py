"""JWT bearer tokens verified against an OpenID Connect issuer's JWKS: the test is the issuer (a discovery
document and a JWKS over real HTTP on loopback), `podium up` (embedded) runs with PODIUM_OIDC_ISSUER and
PODIUM_OIDC_AUDIENCE, and a2a-sdk clients call it with tokens the test signs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
import jwt
import pytest
from a2a.types.a2a_pb2 import ListTasksRequest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.agents.agent_procs import fetch_card, make_client, text_request
from tests.support import Proc, wait_until

pytestmark = pytest.mark.anyio

AUDIENCE = "podium-test"
LINE = re.compile(r"^\s+(\S+)\s+(http://\S+)$", re.M)


class Issuer:
    """An OpenID Connect issuer: one RSA signing key, published at ``/jwks``."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                bodies = {
                    "/.well-known/openid-configuration": {
                        "issuer": issuer.url,
                        "jwks_uri": f"{issuer.url}/jwks",
                    },
                    "/jwks": issuer.jwks,
                }
                body = json.dumps(bodies.get(self.path, {})).encode()
                self.send_response(200 if self.path in bodies else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, sub: str, *, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": self.url, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300, **claims}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": "k1"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    yield issuer
    issuer.close()


@pytest.fixture(scope="module")
def echo(issuer: Issuer) -> Iterator[str]:
    env = {
        "REDIS_URL": "",
        "ANTHROPIC_API_KEY": "",
        "PODIUM_A2A_TOKEN": "",
        "PODIUM_CLIENTS_FILE": "",
        "PODIUM_OIDC_ISSUER": issuer.url,
        "PODIUM_OIDC_AUDIENCE": AUDIENCE,
    }
    proc = Proc.podium("up", "--any-port", "--no-console", "--agents", "echo", env=env)

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"podium up exited:\n{proc.output()}")
        return "Ctrl-C stops everything." in proc.output()

    try:
        wait_until(ready, timeout=90, what="podium up to print its URLs")
        yield dict(LINE.findall(proc.output()))["echo"]
    finally:
        proc.close()


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """A token signed with HMAC by hand (PyJWT rightly refuses a public key as an HMAC secret)."""

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    signed = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    return f"{signed}.{part(hmac.new(secret, signed.encode(), hashlib.sha256).digest())}"


async def _listed(url: str, token: str) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}},
            headers={"A2A-Version": "1.0", "Authorization": f"Bearer {token}"},
        )
    return (
        response.status_code
        if response.status_code != 200
        else len(response.json()["result"].get("tasks", []))
    )


async def test_jwts_from_the_issuer_name_the_client_and_others_are_refused(issuer: Issuer, echo: str) -> None:
    card = await fetch_card(echo)
    scheme = card.security_schemes["oidc"].open_id_connect_security_scheme
    assert scheme.open_id_connect_url == f"{issuer.url}/.well-known/openid-configuration"
    assert any("oidc" in req.schemes for req in card.security_requirements)
    carol = issuer.token("carol")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {carol}"}, timeout=30) as http:
        client = make_client(card, "JSONRPC", streaming=False, http=http)
        try:
            with anyio.fail_after(60):
                _ = [ev async for ev in client.send_message(text_request("hello from carol"))]
            assert len((await client.list_tasks(ListTasksRequest())).tasks) == 1
        finally:
            await client.close()
    # `sub` is the owner: another subject of the same issuer sees none of carol's tasks
    assert await _listed(echo, issuer.token("dave")) == 0
    assert await _listed(echo, issuer.token("ops", scope="ask admin")) == 1  # an admin scope sees all
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "another audience": issuer.token("carol", aud="someone-else"),
        "expired": issuer.token("carol", exp=int(time.time()) - 3600),
        "another issuer": issuer.token("carol", iss="http://evil.example"),
        "signed by another key": issuer.token("carol", key=stranger),
        "unsigned": jwt.encode(
            {"iss": issuer.url, "aud": AUDIENCE, "sub": "carol", "exp": 2**31}, None, "none"
        ),
        "symmetric, keyed with the public JWK": _hs256(
            {"alg": "HS256", "typ": "JWT", "kid": "k1"},
            {"iss": issuer.url, "aud": AUDIENCE, "sub": "carol", "exp": 2**31},
            json.dumps(issuer.jwks["keys"][0]).encode(),
        ),
    }
    for why, token in refused.items():
        assert await _listed(echo, token) == 401, why
