"""JWT bearer tokens from an OpenID Connect issuer (``PODIUM_OIDC_ISSUER``, ``PODIUM_OIDC_AUDIENCE``).

PyJWT (installed with a2a-sdk's ``signing`` extra) does the verifying: the issuer's discovery document names
its JWKS, ``PyJWKClient`` fetches and caches the keys (and fetches again for a key id it has not seen), and
``jwt.decode`` checks the signature, ``iss``, ``aud``, ``exp`` (and ``nbf``, ``iat`` when present). The ``sub``
claim names the client: the owner of the tasks it creates. A ``scope`` (or ``scp``) claim holding ``admin``
gives the admin scope. Only asymmetric algorithms are accepted, so a key published for verifying can never be
used to forge a token.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

import anyio
import jwt

from podium.agents.host.auth import Caller
from podium.bus.owners import ADMIN, ASK

logger = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY_S = 30


class OidcVerifier:
    """Verifies JWTs from ``issuer`` for ``audience``."""

    def __init__(self, issuer: str, audience: str, *, timeout: float = 10.0) -> None:
        self.issuer = issuer
        self.audience = audience
        self.timeout = timeout
        self._jwks: jwt.PyJWKClient | None = None

    def _client(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                discovery = json.load(response)
            if discovery.get("issuer", self.issuer).rstrip("/") != self.issuer.rstrip("/"):
                raise jwt.InvalidIssuerError(f"{url} names another issuer: {discovery.get('issuer')!r}")
            self._jwks = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=True, timeout=int(self.timeout))
        return self._jwks

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims. Raises ``jwt.PyJWTError`` (or ``OSError`` when the issuer is unreachable)."""
        key = self._client().get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            audience=self.audience,
            issuer=self.issuer,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        return claims

    async def authenticate(self, token: str) -> Caller | None:
        """The caller the token names, or None for a token that does not verify (logged, without it)."""
        try:
            claims = await anyio.to_thread.run_sync(self.verify, token)
        except (jwt.PyJWTError, OSError, KeyError, ValueError) as exc:
            logger.info("a bearer JWT was refused: %s", exc)
            return None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            return None
        granted = claims.get("scope", claims.get("scp", ""))
        words = granted.split() if isinstance(granted, str) else list(granted or [])
        return Caller(sub, frozenset({ASK, ADMIN} if ADMIN in words else {ASK}))
